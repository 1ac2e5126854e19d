"""bridging-predict-audio: speech-only emotion predictions for wav files.

    bridging-predict-audio CKPT INPUT OUTPUT [--causal] [--workers N] [--cache-dir DIR]
                           [--wp N] [--wf N] [--extractor-path DIR]
                           [--out-of-range warn|refuse] [--no-progress] [--force]

INPUT: a CSV with columns ``file`` (wav path, relative to the CSV's folder), ``speaker``
(M/F or 0/1) and optionally ``dialogue``, one row per utterance in turn order; or a folder
holding such a ``manifest.csv``. The features are extracted with the extractor stored in the
checkpoint (the one its training data was made with), the model runs on audio only (other
modalities zeroed), and OUTPUT (a CSV) gets one row per utterance: [dialogue,] file,
speaker, pred, prob_<label>. An existing OUTPUT is refused unless --force; the checkpoint,
the manifest and the wav files are never replaced, even forced.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from bridging.cli.common import add_force_option, command_parser

PROG = "bridging-predict-audio"


def window(text: str) -> int:
    """A graph window: an integer >= 0, or -1 (unbounded)."""
    try:
        value = int(text)
    except ValueError:
        value = -2
    if value < -1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or -1, got {text!r}")
    return value


def add_window_options(p: argparse.ArgumentParser) -> None:
    """--wp and --wf: the graph windows, the model's unless given (bridging-predict-audio,
    bridging-export)."""
    p.add_argument("--wp", type=window, default=None, help="past graph window (the model's)")
    p.add_argument("--wf", type=window, default=None, help="future graph window (the model's)")


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, __doc__)
    p.add_argument("ckpt", metavar="CKPT", help="a speech model's checkpoint (best.ckpt)")
    p.add_argument("input", metavar="INPUT", help="a manifest CSV, or a folder with manifest.csv")
    p.add_argument("output", metavar="OUTPUT", help="the predictions CSV to write")
    p.add_argument(
        "--causal",
        action="store_true",
        help="predict each utterance from the utterances before it (and itself) only, as a "
        "live session does (bridging.speech.inference.Session)",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel feature extraction (1)")
    p.add_argument(
        "--cache-dir", default=None, metavar="DIR", help="keep per-file features there, reuse them"
    )
    add_window_options(p)
    p.add_argument(
        "--extractor-path",
        default=None,
        metavar="DIR",
        help="where the HuBERT/wav2vec2 folder is now, if it moved (its weights must match "
        "the hash stored in the checkpoint)",
    )
    p.add_argument(
        "--out-of-range",
        choices=("warn", "refuse"),
        default="warn",
        help="a recording whose features lie far outside the model's training range (an "
        "all-silent or near-constant wav: more than 5%% of the features beyond 10 training "
        "standard deviations) gets a one-line warning naming the file (warn, the default) or "
        "stops the command (refuse)",
    )
    add_force_option(p, "OUTPUT (never an input)")
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bar during feature extraction",
    )
    return p


def _check_output(args) -> None:
    """Refuse, before any work, an OUTPUT that is an input (the checkpoint, the manifest, a
    wav file it lists, through any link: never, even forced) or that exists (unless
    --force)."""
    from pathlib import Path

    from bridging.speech.inference import read_manifest
    from bridging.utils.files import (
        check_output_path,
        refuse_existing,
        refuse_over_inputs,
        refuse_own_input,
    )

    inputs = {"the checkpoint": args.ckpt, "the input": args.input}
    manifest = Path(args.input) / "manifest.csv" if Path(args.input).is_dir() else None
    if manifest is not None:
        inputs["the manifest"] = manifest
    refuse_own_input(args.output, inputs, "OUTPUT")
    wavs = [(f"a recording listed in {e.where}:", e.path) for e in read_manifest(args.input)]
    refuse_over_inputs([("OUTPUT", args.output)], wavs)
    check_output_path(args.output, "")  # a folder: --force would not replace it either
    refuse_existing(args.output, args.force, "give --force to replace it")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print(f"{PROG}: error: --workers: expected at least 1, got {args.workers}", file=sys.stderr)
        return 2
    from bridging.data.records import DataError
    from bridging.speech.inference import FeatureRangeWarning, predict_audio
    from bridging.utils.files import OutputError

    overrides = {"path": args.extractor_path} if args.extractor_path else None
    shown = warnings.showwarning

    def show(message, category, *rest, **kwargs):
        if issubclass(category, FeatureRangeWarning):  # one line, naming the file
            print(f"{PROG}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *rest, **kwargs)

    try:
        _check_output(args)
        with warnings.catch_warnings():
            warnings.simplefilter("always", FeatureRangeWarning)
            warnings.showwarning = show
            rows = predict_audio(
                args.ckpt,
                args.input,
                args.output,
                causal=args.causal,
                workers=args.workers,
                cache_dir=args.cache_dir,
                wp=args.wp,
                wf=args.wf,
                extractor_overrides=overrides,
                progress=args.progress,
                out_of_range=args.out_of_range,
            )
    except (DataError, OutputError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    mode = "causal" if args.causal else "batch"
    print(f"wrote {len(rows)} predictions ({mode} mode) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
