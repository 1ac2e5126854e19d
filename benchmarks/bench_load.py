"""Loading time of IEMOCAP-size data files (the issue's target: load + build tensors < 3 s).

Writes a full-size 6-way DialogueRNN-format file with the synthetic generator (151
dialogues, 7,433 utterances, a 100 + t 768 + v 512 features) to a temporary directory, then
times ``load_corpus`` on it (allow-list unpickling, per-utterance stacking, validation), as
6-way and as 4-way, and the same corpus in COGMEN's layout and in bridging's native format.
Reports the median and best of ``--repeat`` runs.

    python benchmarks/bench_load.py [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bridging.data.formats.cogmen import write_cogmen
from bridging.data.formats.dialoguernn import write_dialoguernn
from bridging.data.formats.native import write_native
from bridging.data.formats.safe_pickle import safe_load
from bridging.data.formats.sources import load_corpus
from bridging.data.synthetic import synthesize
from bridging.data.validate import validate_corpus


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir()) / 2**20
    return path.stat().st_size / 2**20


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--keep", default=None, help="write the files here instead of a temp dir")
    args = p.parse_args(argv)

    med, best, corpus = timed(lambda: synthesize(total_utterances=7433, seed=0), args.repeat)
    n = sum(len(d) for s in corpus.splits.values() for d in s)
    print(
        f"synthesize (6-way, {len(sum(corpus.splits.values(), []))} dialogues, {n} utt): "
        f"median {med:.3f} s, best {best:.3f} s"
    )

    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    root = Path(args.keep or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "dialoguernn": root / "IEMOCAP_features.pkl",
        "cogmen": root / "data_iemocap.pkl",
        "native": root / "native",
    }
    writers = {"dialoguernn": write_dialoguernn, "cogmen": write_cogmen, "native": write_native}
    for fmt, path in files.items():
        t0 = time.perf_counter()
        writers[fmt](corpus, path)
        print(f"write {fmt:<11} {time.perf_counter() - t0:.3f} s, {size_mb(path):.1f} MiB")

    rows = [
        ("dialoguernn", "iemocap_6"),
        ("dialoguernn", "iemocap_4"),
        ("cogmen", "iemocap_6"),
        ("native", "iemocap_6"),
        ("native", "iemocap_4"),
    ]
    print(f"\nload_corpus (median / best of {args.repeat}), target < 3 s incl. tensors:")
    for fmt, label_set in rows:
        med, best, c = timed(
            lambda f=files[fmt], ls=label_set: load_corpus(f, label_set=ls), args.repeat
        )
        n = sum(len(d) for s in c.splits.values() for d in s)
        print(f"  {fmt:<11} {label_set}: {med:.3f} / {best:.3f} s  ({n} utterances)")

    path = files["dialoguernn"]
    med, _, _ = timed(lambda: safe_load(path, encoding="latin1"), args.repeat)
    print(f"\n  of which DialogueRNN unpickling alone: {med:.3f} s")
    c = load_corpus(path, label_set="iemocap_6", validate=False)
    med, _, _ = timed(lambda: validate_corpus(c, ["a", "t", "v"]), args.repeat)
    print(f"  of which validation alone:            {med:.3f} s")

    # the figures: load + build every tensor (the DataModule), then one epoch of
    # 32-dialogue batches with no model
    from bridging.data.datamodule import IEMOCAPDataModule

    def load_and_build():
        dm = IEMOCAPDataModule(
            path=str(path), label_set="iemocap_6", modalities=["a", "t", "v"], batch_size=32
        )
        dm.setup()
        return dm

    med, best, dm = timed(load_and_build, args.repeat)
    print(
        f"\nDataModule setup (DialogueRNN 6-way file: load + validate + tensors): "
        f"median {med:.3f} s, best {best:.3f} s (target < 3 s)"
    )

    def epoch():
        n = 0
        for split in ("train", "dev", "test"):
            for batch in dm.split(split).loader(32, shuffle=split == "train"):
                n += int(batch.lengths.sum())
        return n

    med, best, n = timed(epoch, max(args.repeat, 10))
    print(
        f"one epoch of batches over all splits ({n} utterances, batch 32, no model): "
        f"median {med * 1000:.1f} ms, best {best * 1000:.1f} ms (target < 200 ms)"
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
