"""What masked training costs: training-epoch time with and without the modality mask.

Default setting: the built-in synthetic data (108 training dialogues, ~49 utterances each),
a+v input, COGMEN L 4, H 7, dropout 0.1, batch 32 dialogues, 2 CPU threads, the
experiment=masked policy as its config composes it (the authors' policy: audio_full 0.1,
other_full 0.1, random the rest with per-dimension rates a 0.2 / v 0.2, span 1, granularity
batch). An epoch = every training batch: (mask), forward, NLL, backward,
Adam step, exactly the recipe's ``training_losses``; the unmasked epoch calls the base
recipe's ``training_losses`` on the same model. Epochs alternate (masked, plain, plain,
masked, ...) so that load drift on a shared machine hits both alike. The mask alone is also
timed over every batch of an epoch (many repetitions), per granularity: that is the robust
figure. On a shared machine, 2 intra-op threads on 2 busy cores make single epochs up to
10x slower when a thread is descheduled (threads wait for each other): compare the minima
(the least disturbed epochs), medians are shown for reference only.

    .venv/bin/python benchmarks/bench_masking.py [--epochs 4] [--granularity batch]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time

import torch

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.recipes.base import EmotionRecipe
from bridging.recipes.masked import MaskedRecipe


def masked_policy() -> dict:
    """The mask options of ``experiment=masked`` as the configs compose them."""
    from omegaconf import OmegaConf

    from bridging.runs.config import compose

    return OmegaConf.to_container(compose("train", ["experiment=masked"]).recipe.mask, resolve=True)


POLICY = masked_policy()


def run_epoch(recipe, opt, loader, masked: bool) -> float:
    """Wall seconds of one training epoch."""
    recipe.train()
    t0 = time.perf_counter()
    for batch in loader:
        if masked:
            losses = recipe.training_losses(batch)
        else:
            losses = EmotionRecipe.training_losses(recipe, batch)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
    return time.perf_counter() - t0


def time_mask_only(recipe, batches, reps: int) -> list[float]:
    """Wall seconds the mask takes over all batches of one epoch, once per rep."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for batch in batches:
            recipe.masker(batch)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=4, help="timed epochs per variant")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=7)
    p.add_argument("--modalities", default="av")
    p.add_argument("--gnn", default="rgcn_transformer", choices=["rgcn_transformer", "none"])
    p.add_argument("--granularity", default="batch", choices=["batch", "dialogue", "utterance"])
    p.add_argument("--mask-reps", type=int, default=20)
    p.add_argument("--seed", type=int, default=24)
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    modalities = list(a.modalities)
    dm = IEMOCAPDataModule(modalities=modalities, batch_size=a.batch, synthetic={"seed": 0})
    dm.setup()
    train = dm.split("train")
    recipe = MaskedRecipe(
        facts=dm.facts.to_dict(),
        modalities=modalities,
        model={
            "seqcontext_nlayer": a.layers,
            "gnn_nheads": a.heads,
            "drop_rate": 0.1,
            "gnn": a.gnn,
        },
        mask={**POLICY, "granularity": a.granularity},
        seed=a.seed,
    )
    opt = torch.optim.Adam(recipe.parameters(), lr=1e-4, weight_decay=1e-8)
    loader = dm.train_dataloader()
    batches = list(loader)

    print("$ " + shlex.join([sys.executable.split("/")[-1], *sys.argv]))
    print(
        f"COGMEN {'+'.join(modalities)} (input {dm.facts.input_size(modalities)}), L {a.layers}, "
        f"H {a.heads}, gnn {a.gnn}, batch {a.batch}, {a.threads} threads, torch "
        f"{torch.__version__}, CPU; mask {POLICY}, granularity {a.granularity}"
    )
    print(
        f"epoch: {len(train)} dialogues, {train.n_utterances} utterances, {len(batches)} "
        f"batches; load average before: {os.getloadavg()[0]:.2f}"
    )

    run_epoch(recipe, opt, loader, True)  # warm-up
    run_epoch(recipe, opt, loader, False)
    times = {True: [], False: []}
    for k in range(a.epochs):
        order = (True, False) if k % 2 == 0 else (False, True)
        for masked in order:
            times[masked].append(run_epoch(recipe, opt, loader, masked))
    print(f"{'variant':<10}{'min s/epoch':>13}{'median':>9}{'max':>9}{'epochs':>8}")
    for name, key in (("plain", False), ("masked", True)):
        ts = times[key]
        print(f"{name:<10}{min(ts):>13.3f}{statistics.median(ts):>9.3f}{max(ts):>9.3f}{len(ts):>8}")
    plain_min = min(times[False])
    for what, f in (("min", min), ("median", statistics.median)):
        print(
            f"epoch-level overhead of masking ({what}/{what} - 1): "
            f"{100 * (f(times[True]) / f(times[False]) - 1):+.2f} %"
        )

    print(f"\nthe mask alone, all batches of an epoch ({a.mask_reps} reps, % of min plain epoch):")
    for gran in ("batch", "dialogue", "utterance"):
        recipe.masker.granularity = gran
        ts = time_mask_only(recipe, batches, a.mask_reps)
        print(
            f"  granularity {gran:<10} min {1e3 * min(ts):8.2f} ms = "
            f"{100 * min(ts) / plain_min:6.3f} %   median {1e3 * statistics.median(ts):8.2f} ms"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
