"""Loading time of a full-size MELD-layout file (issue 14's target: load + build tensors < 3 s).

Writes MELD's DialogueRNN/DialogueGCN 9-tuple with the MELD-shaped generator (1,433
dialogues, 13,708 utterances, a 300 + t 600 features, 9-wide one-hot speakers, emotion and
sentiment labels) to a temporary directory, then times, as the median and best of
``--repeat`` runs: the allow-list unpickling alone, ``load_corpus`` (unpickling, per-dialogue
checks, validation), and the DataModule setup (load + validate + every split's padded
tensors: what a training run does before its first batch). Prints the machine's load
average before and after, since the figure means little on a busy machine.

    python benchmarks/bench_meld_load.py [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench_load import timed  # this folder (run as python benchmarks/bench_meld_load.py)

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.data.formats.meld import write_meld
from bridging.data.formats.safe_pickle import safe_load
from bridging.data.formats.sources import load_corpus
from bridging.data.synthetic import synthesize

TARGET_S = 3.0


def load_average() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--keep", default=None, help="write the file here instead of a temp dir")
    args = p.parse_args(argv)
    print(f"load average (1, 5, 15 min) before: {load_average()}; {os.cpu_count()} cores")

    t0 = time.perf_counter()
    corpus = synthesize(preset="meld", seed=0)
    n_dlg = sum(len(ds) for ds in corpus.splits.values())
    n_utt = sum(len(d) for ds in corpus.splits.values() for d in ds)
    print(
        f"synthesize (preset meld, {n_dlg} dialogues, {n_utt} utterances): "
        f"{time.perf_counter() - t0:.3f} s"
    )

    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    root = Path(args.keep or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "MELD_features_raw.pkl"
    t0 = time.perf_counter()
    write_meld(corpus, path, force=True)
    print(
        f"write meld layout: {time.perf_counter() - t0:.3f} s, "
        f"{path.stat().st_size / 2**20:.1f} MiB"
    )

    med, best, _ = timed(lambda: safe_load(path, encoding="latin1"), args.repeat)
    print(f"\n(median / best of {args.repeat})")
    print(f"  allow-list unpickling alone:       {med:.3f} / {best:.3f} s")
    med, best, c = timed(lambda: load_corpus(path, label_set="meld_7"), args.repeat)
    n = sum(len(d) for ds in c.splits.values() for d in ds)
    print(f"  load_corpus meld_7 (incl. checks): {med:.3f} / {best:.3f} s ({n} utterances)")

    def load_and_build():
        dm = IEMOCAPDataModule(
            path=str(path), label_set="meld_7", modalities=["a", "t"], batch_size=32, max_speakers=9
        )
        dm.setup()
        return dm

    med, best, dm = timed(load_and_build, args.repeat)
    sizes = {s: (len(t), t.n_utterances) for s, t in dm.splits.items()}
    verdict = "within" if med < TARGET_S else "OVER"
    print(
        f"\nDataModule setup (MELD file: load + validate + tensors, a+t): median {med:.3f} s, "
        f"best {best:.3f} s ({verdict} the {TARGET_S:.0f} s target); splits {sizes}"
    )
    print(f"load average after: {load_average()}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
