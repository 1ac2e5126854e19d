"""bridging-export: a speech-only model to TorchScript or ONNX (graph layers included).

    bridging-export ckpt_path=PATH output=model.onnx [format=auto|onnx|torchscript]
                    [wp=null] [wf=null] [check=true]

format=auto picks from the output's suffix (.onnx -> ONNX, otherwise TorchScript). The
exported model takes x [1, T, D_audio] float32 and speakers [1, T] int64 for one dialogue and
returns log_probs [T, C]; ``<output>.json`` holds the label names, speaker names and the
feature extractor's spec. check=true compares the export with the PyTorch model on random
dialogues (atol 1e-4) and fails if they differ.
"""

from __future__ import annotations

import sys

from bridging.cli.predict_audio import parse_overrides

KEYS = {"ckpt_path": None, "output": None, "format": "auto", "wp": None, "wf": None, "check": True}


def main(argv=None) -> int:
    from bridging.data.records import DataError

    argv = sys.argv[1:] if argv is None else list(argv)
    cfg = parse_overrides(argv, KEYS, ("ckpt_path", "output"), "bridging-export", __doc__)
    fmt = str(cfg["format"]).lower()
    output = str(cfg["output"])
    if fmt == "auto":
        fmt = "onnx" if output.lower().endswith(".onnx") else "torchscript"
    if fmt not in ("onnx", "torchscript"):
        print(
            f"bridging-export: error: format={fmt!r}: expected onnx or torchscript", file=sys.stderr
        )
        return 2
    from bridging.recipes import load_recipe
    from bridging.speech.export import export_onnx, export_torchscript, max_difference

    try:
        recipe = load_recipe(str(cfg["ckpt_path"]))
        fn = export_onnx if fmt == "onnx" else export_torchscript
        path = fn(recipe, output, wp=cfg["wp"], wf=cfg["wf"])
    except (DataError, ValueError, OSError) as exc:  # OSError: an output it cannot write
        print(f"bridging-export: error: {exc}", file=sys.stderr)
        return 2
    msg = f"exported {fmt} to {path} (metadata: {path}.json)"
    if cfg["check"]:
        diff = max_difference(recipe, path, fmt, wp=cfg["wp"], wf=cfg["wf"])
        msg += f"; max |log_prob difference| vs PyTorch: {diff:.2e}"
        if diff > 1e-4:
            print(f"bridging-export: error: {msg}", file=sys.stderr)
            return 1
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
