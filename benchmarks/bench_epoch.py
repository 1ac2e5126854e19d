"""Training-epoch time of the teacher at IEMOCAP 4-way scale, through the real Lightning loop.

Data: the synthetic generator with IEMOCAP's 7,433 6-way utterances reduced to the 4-way set
(train = 108 dialogues, about 3,200 utterances after the 12 dev dialogues), av input (612),
COGMEN L 4, H 7, batch 32, 2 CPU threads. Times the training part of each epoch (validation
excluded) and reports the median over epochs after the first.

    python benchmarks/bench_epoch.py [--epochs 4] [--pad-mode mask|reference] [--profile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import pytorch_lightning as pl
import torch

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.data.synthetic import synthesize
from bridging.recipes.teacher import TeacherRecipe


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, module):
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.times.append(time.perf_counter() - self.t0)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pad-mode", default="mask")
    p.add_argument("--modalities", default="a,v")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=7)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    mods = args.modalities.split(",")
    corpus = synthesize(label_set="iemocap_4", total_utterances=7433, seed=0)
    dm = IEMOCAPDataModule(corpus=corpus, modalities=mods, label_set="iemocap_4", batch_size=32)
    dm.setup()
    train = dm.split("train")
    model = {
        "seqcontext_nlayer": args.layers,
        "gnn_nheads": args.heads,
        "drop_rate": 0.1,
        "pad_mode": args.pad_mode,
    }
    # no validation here: the plateau scheduler (which needs val/loss) is off
    optim = {"scheduler": {"enabled": False}}
    recipe = TeacherRecipe(facts=dm.facts.to_dict(), modalities=mods, model=model, optim=optim)
    timer = EpochTimer()
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    pl.seed_everything(0, workers=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.fit(recipe, datamodule=dm)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    else:
        trainer.fit(recipe, datamodule=dm)
    steady = timer.times[1:] or timer.times
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"train split: {len(train)} dialogues, {train.n_utterances} utterances; "
        f"input {dm.facts.input_size(mods)}; L {args.layers} H {args.heads}; "
        f"pad_mode {args.pad_mode}; threads {args.threads}"
    )
    print("epoch times (s): " + ", ".join(f"{t:.2f}" for t in timer.times))
    print(f"median epoch after the first: {statistics.median(steady):.2f} s")


if __name__ == "__main__":
    main()
