"""bridging-import-cogmen OFFICIAL.pt OUT.ckpt: a reference COGMEN checkpoint -> a bridging one.

The result is a teacher checkpoint that bridging-eval, bridging-predict and the distillation
student (teacher.ckpt_path) accept. Nothing of the file is executed: it is read through an
allow-list unpickler and the ``cogmen`` package is not needed. An existing OUT.ckpt is
refused unless --force; OUT.ckpt is never the input itself.
"""

from __future__ import annotations

import argparse
import json
import sys

from bridging.cli.common import add_force_option, command_parser, feature_sizes
from bridging.data.records import LABEL_SETS, DataError


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("bridging-import-cogmen", __doc__)
    p.add_argument("src", metavar="OFFICIAL.pt")
    p.add_argument("out", metavar="OUT.ckpt")
    add_force_option(p, "OUT.ckpt")
    p.add_argument(
        "--label-set",
        choices=sorted(LABEL_SETS),
        default=None,
        help="default: from args.dataset (iemocap -> iemocap_6, iemocap_4)",
    )
    p.add_argument(
        "--feature-sizes",
        type=feature_sizes,
        default=None,
        help="per-modality sizes when the args lack them, e.g. a=100,t=768,v=512",
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from bridging.cogmen_import.convert import import_reference
    from bridging.utils.files import (
        OutputError,
        check_output_path,
        refuse_existing,
        refuse_own_input,
    )

    try:
        refuse_own_input(args.out, {"the reference checkpoint": args.src}, "OUT.ckpt")
        check_output_path(args.out, "")  # a folder: --force would not replace it either
        refuse_existing(args.out, args.force, "give --force to replace it")
        summary = import_reference(
            args.src, args.out, feature_sizes=args.feature_sizes, label_set=args.label_set
        )
    except (DataError, OutputError) as exc:
        print(f"bridging-import-cogmen: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
