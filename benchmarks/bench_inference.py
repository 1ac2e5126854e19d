"""Speech-only inference speed: one 50-utterance dialogue, from features and from wav files.

1. From features (target: at most 20 ms on CPU): the speech-only student / audio-only model
   of the paper (L = 4 encoder layers, H = 7 GNN heads, wp = wf = 5), eGeMAPS input (88-d),
   one dialogue of 50 utterances; median of many runs after warm-up, for
   - the PyTorch model (PyG graph layers), as bridging-predict-audio and Session run it;
   - its dense export form (DenseCOGMEN) in eager PyTorch, TorchScript and ONNX Runtime;
   - the causal batch mode (all 50 prefixes at once) and one live Session step.
2. From wav with eGeMAPS: 50 synthetic utterances (1 to 7 s, IEMOCAP-like, 16 kHz wav
   files), openSMILE extraction + the model; real-time factor = processing time / audio
   duration (serial and with --workers processes).

    .venv/bin/python benchmarks/bench_inference.py [--threads 2] [--runs 200] [--workers 2]

Random weights (speed does not depend on values). On a shared machine the wall times are
inflated; the load average is printed. Note: with 2 intra-op threads on a loaded machine,
every small PyG scatter waits for the second OpenMP thread to be scheduled (can be ~100 ms
each); --threads 1 shows the single-core time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# torch, Lightning and the recipes are imported inside the functions: the extraction worker
# processes (spawned) re-import this module, and should not pay for them


def median_ms(fn, runs: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def student(dim: int, layers: int, heads: int, spec: dict | None):
    import torch

    from bridging.data.datamodule import DatasetFacts
    from bridging.recipes.teacher import TeacherRecipe

    facts = DatasetFacts(
        modalities=["a"],
        feature_sizes={"a": dim},
        label_set="iemocap_4",
        label_names=["hap", "sad", "neu", "ang"],
        n_speakers=2,
        speaker_names=["M", "F"],
        class_counts=[1, 1, 1, 1],
        source_format="bench",
        path=None,
        extractors={"a": spec} if spec else {},
    )
    model = {"seqcontext_nlayer": layers, "gnn_nheads": heads, "drop_rate": 0.1}
    torch.manual_seed(0)
    return TeacherRecipe(facts=facts.to_dict(), modalities=["a"], model=model).eval()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--utterances", type=int, default=50)
    p.add_argument("--input-size", type=int, default=88, help="88 = eGeMAPS")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--workers", type=int, default=2, help="extraction processes for the wav part")
    p.add_argument("--no-wav", action="store_true", help="skip the wav / eGeMAPS part")
    p.add_argument("--no-features", action="store_true", help="skip the from-features part")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print("$ " + shlex.join([sys.executable.split("/")[-1], *sys.argv]))
    print(
        f"torch {torch.__version__}, {args.threads} intra-op threads, {os.cpu_count()} CPUs, "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    if not args.no_features:
        bench_features(args)
    if not args.no_wav:
        bench_wav(args)
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
    return 0


def bench_features(args) -> None:
    import torch

    from bridging.speech.export import (
        dense_speech_model,
        export_onnx,
        export_torchscript,
        load_exported,
    )
    from bridging.speech.inference import Session, SpeechModel

    t, d = args.utterances, args.input_size
    recipe = student(d, args.layers, args.heads, None)
    model = SpeechModel(recipe, load_extractor=False)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(t, d, generator=gen)
    spk = torch.randint(0, 2, (t,), generator=gen)
    xs, ss = x.numpy(), spk.tolist()
    print(
        f"\n[from features] one dialogue of {t} utterances, input {d}, L {args.layers}, "
        f"H {args.heads}, wp = wf = 5; median (p90) of {args.runs} runs"
    )
    rows = []
    rows.append(
        (
            "PyTorch model (PyG layers)",
            *median_ms(lambda: model.predict_features(xs, ss), args.runs),
        )
    )
    dense = dense_speech_model(recipe)
    with torch.no_grad():
        rows.append(
            ("dense form, eager PyTorch", *median_ms(lambda: dense(x[None], spk[None]), args.runs))
        )
    with tempfile.TemporaryDirectory() as tmp:
        ts = load_exported(export_torchscript(recipe, Path(tmp) / "m.pt"))
        rows.append(("TorchScript export", *median_ms(lambda: ts(x[None], spk[None]), args.runs)))
        try:
            ox = load_exported(export_onnx(recipe, Path(tmp) / "m.onnx"))
            xn, sn = x[None].numpy(), spk[None].numpy()
            rows.append(("ONNX Runtime export", *median_ms(lambda: ox(xn, sn), args.runs)))
        except ImportError as exc:
            print(f"  (ONNX skipped: {exc})")
    runs_slow = max(10, args.runs // 10)
    rows.append(
        (
            "causal mode: all 50 prefixes",
            *median_ms(lambda: model.predict_prefixes(xs, ss), runs_slow),
        )
    )
    session = Session(model)
    for k in range(t - 1):
        session.add_features(xs[k], ss[k])

    def one_step():
        session.add_features(xs[-1], ss[-1])
        session._x.pop()  # keep the session at 49 past utterances
        session._spk.pop()

    rows.append(("live Session.add, 50th utterance", *median_ms(one_step, args.runs)))
    for name, med, p90 in rows:
        print(f"  {name:<36}{med:>9.2f} ms  (p90 {p90:.2f})")


def bench_wav(args) -> None:
    try:
        from bridging.speech.extractors import FeaturePipeline, create_extractor
    except ImportError as exc:  # pragma: no cover
        print(f"(wav part skipped: {exc})")
        return
    from bridging.speech.audio import write_wav
    from bridging.speech.inference import SpeechModel
    from bridging.speech.testing import EMOTIONS, utterance_sound

    rng = np.random.default_rng(0)
    pipe = FeaturePipeline(create_extractor("egemaps"))
    recipe = student(pipe.dim, args.layers, args.heads, pipe.spec)
    model = SpeechModel(recipe)
    with tempfile.TemporaryDirectory() as tmp:
        files, total = [], 0.0
        for i in range(args.utterances):
            sec = float(np.clip(rng.gamma(3.0, 1.5), 1.0, 7.0))
            emo = EMOTIONS[i % 4]
            files.append(write_wav(Path(tmp) / f"u{i:03d}.wav", utterance_sound(emo, sec, rng)))
            total += sec
        spk = [i % 2 for i in range(len(files))]
        print(
            f"\n[from wav, eGeMAPS] {len(files)} utterances, {total:.1f} s of 16 kHz audio "
            f"(mean {total / len(files):.2f} s)"
        )
        model.predict_files(files[:2], spk[:2])  # warm-up (openSMILE, torch)
        for workers in sorted({1, args.workers}):
            t0 = time.perf_counter()
            feats = model.features(files, workers=workers, progress=False)
            t1 = time.perf_counter()
            model.predict_features(feats, spk)
            t2 = time.perf_counter()
            print(
                f"  workers={workers}: extraction {t1 - t0:.2f} s + model {1e3 * (t2 - t1):.1f} ms"
                f" = {t2 - t0:.2f} s; real-time factor {(t2 - t0) / total:.4f} "
                f"(extraction alone {(t1 - t0) / total:.4f})"
            )
        per = []
        for f in files[:10]:
            t0 = time.perf_counter()
            pipe.features_of(f)
            per.append(time.perf_counter() - t0)
        print(f"  one utterance (live step, extraction only): median {1e3 * np.median(per):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
