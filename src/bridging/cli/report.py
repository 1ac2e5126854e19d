"""bridging-report: every run's metrics.json under some folders in one comparison table.

    bridging-report DIR... [--out report.md] [--csv report.csv] [--plots DIR] [--hparam KEY]

DIR: run dirs, multirun dirs or any folder above them (searched recursively), or
metrics.json files. Prints the Markdown report (runs, mean ± std over seeds, best
configuration per experiment) on stdout; --out also writes it (with the plots linked),
--csv writes the runs table and, next to it, <name>.grouped.csv (mean/std over seeds),
--plots writes the PNGs (weighted F1 against T per alpha, against the masking
probabilities, the confusion matrices) that the runs allow. Metrics are test metrics in %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bridging-report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run or multirun directories")
    p.add_argument("--out", metavar="FILE", help="write the Markdown report here")
    p.add_argument("--csv", metavar="FILE", help="write the runs table (and FILE.grouped.csv)")
    p.add_argument("--plots", metavar="DIR", help="write the PNG plots into this folder")
    p.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY",
        help="a column to show even if it does not vary (an hparams key such as kd.alpha, "
        "or a dotted path into metrics.json); repeat or comma-separate",
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from bridging.io import atomic_write_text
    from bridging.report import ReportError, build_report, write_plots

    keys = [k.strip() for item in args.hparam for k in item.split(",") if k.strip()]
    try:
        report = build_report(args.dirs, hparams=keys)
    except ReportError as e:
        print(f"bridging-report: error: {e}", file=sys.stderr)
        return 2
    plots = {}
    if args.plots:
        plots = write_plots(report, args.plots)
        for name, path in plots.items():
            print(f"bridging-report: wrote {name} plot {path}", file=sys.stderr)
        if not plots:
            print("bridging-report: no plot applies to these runs", file=sys.stderr)
    if args.csv:
        for path in report.write_csv(args.csv):
            print(f"bridging-report: wrote {path}", file=sys.stderr)
    text = report.markdown(plots=plots)
    if args.out:
        out = Path(args.out)
        atomic_write_text(out, report.markdown(plots=plots, relative_to=out.parent))
        print(f"bridging-report: wrote {out}", file=sys.stderr)
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
