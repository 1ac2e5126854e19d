"""bridging-export: a speech-only model to TorchScript or ONNX (graph layers included).

    bridging-export CKPT OUTPUT [--format auto|onnx|torchscript] [--wp N] [--wf N]
                    [--no-check] [--force]

--format auto picks from OUTPUT's suffix (.onnx -> ONNX, otherwise TorchScript). The
exported model takes x [1, T, D_audio] float32 and speakers [1, T] int64 for one dialogue and
returns log_probs [T, C]; ``<OUTPUT>.json`` holds the label names, speaker names and the
feature extractor's spec. The export is compared with the PyTorch model on random dialogues
(atol 1e-4) and the command fails if they differ (--no-check skips it). An existing OUTPUT
or OUTPUT.json is refused unless --force; the checkpoint itself is never replaced. A model
whose weights are not finite (NaN or inf: its training diverged) is refused, nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from bridging.cli.common import add_force_option, command_parser
from bridging.cli.predict_audio import add_window_options

PROG = "bridging-export"


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, __doc__)
    p.add_argument("ckpt", metavar="CKPT", help="a bridging checkpoint (best.ckpt)")
    p.add_argument("output", metavar="OUTPUT", help="model.onnx or model.pt")
    p.add_argument(
        "--format",
        choices=("auto", "onnx", "torchscript"),
        default="auto",
        help="auto (default): from OUTPUT's suffix",
    )
    add_window_options(p)
    add_force_option(p, "OUTPUT (and OUTPUT.json)")
    p.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not compare the export with the PyTorch model",
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from bridging.data.records import DataError

    fmt = args.format
    if fmt == "auto":
        fmt = "onnx" if args.output.lower().endswith(".onnx") else "torchscript"
    from bridging.recipes import load_recipe
    from bridging.speech.export import (
        check_finite_weights,
        export_onnx,
        export_torchscript,
        max_difference,
    )
    from bridging.utils.files import check_output_path, refuse_existing, refuse_own_input

    try:
        meta = f"{args.output}.json"
        for out in (args.output, meta):  # before the work; the checkpoint never, even forced
            refuse_own_input(out, {"the checkpoint": args.ckpt}, "OUTPUT")
            check_output_path(out, "")  # a folder: --force would not replace it either
            refuse_existing(out, args.force, "give --force to replace it")
        new = [p for p in (args.output, meta) if not os.path.lexists(p)]
        recipe = load_recipe(args.ckpt)
        check_finite_weights(recipe, args.ckpt)  # as predict refuses NaN probabilities
        fn = export_onnx if fmt == "onnx" else export_torchscript
        try:
            path = fn(recipe, args.output, wp=args.wp, wf=args.wf)
        except BaseException:  # e.g. the model written, its .json not (a full disk)
            for p in new:
                with contextlib.suppress(OSError):
                    os.unlink(p)
            raise
    except (DataError, ValueError, OSError) as exc:  # OSError: an output it cannot write
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    msg = f"exported {fmt} to {path} (metadata: {path}.json)"
    if args.check:
        diff = max_difference(recipe, path, fmt, wp=args.wp, wf=args.wf)
        msg += f"; max |log_prob difference| vs PyTorch: {diff:.2e}"
        if diff > 1e-4:
            print(f"{PROG}: error: {msg}", file=sys.stderr)
            return 1
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
