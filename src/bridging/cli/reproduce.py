"""The paper's whole comparison in one command (``make reproduce`` / ``bridging-reproduce``).

The command's parsing only; the work and its description are in :mod:`bridging.runs.reproduce`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bridging.cli.common import command_parser, describe, stdout_closed
from bridging.runs import reproduce as lib
from bridging.runs.reproduce import EPOCHS, FOLDS, PROTOCOLS, QUICK_EPOCHS, QUICK_SEEDS

DOC = lib.__doc__


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("bridging-reproduce", DOC)
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small data and model, {QUICK_EPOCHS} epochs, seeds {QUICK_SEEDS}: a "
        "minutes-long smoke test (its figures are not the comparison)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="a real data file: IEMOCAP (COGMEN's, DialogueRNN's or bridging's format) or MELD "
        "(DialogueRNN's or MMGCN's layout, detected from the content: the meld_* presets run "
        "under the same names); default: the synthetic IEMOCAP-shaped data",
    )
    p.add_argument("--label-set", default=None, help="default: iemocap_4 (meld_7 for a MELD file)")
    p.add_argument(
        "--protocol",
        choices=("auto", *PROTOCOLS),
        default="auto",
        help="loso: leave one IEMOCAP session out, every job for every fold of --folds "
        "(docs/protocols.md; not for MELD); paper: sessions 1-4 train, session 5 test; auto "
        "(default): loso, or paper for a MELD file",
    )
    p.add_argument(
        "--folds",
        type=int,
        nargs="+",
        default=None,
        help=f"with --protocol loso: the folds (test sessions) to run (default "
        f"{' '.join(map(str, FOLDS))})",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="default: 0 under loso (one seed per fold), 0 1 2 under paper; with --quick 0 "
        f"under loso, {' '.join(map(str, QUICK_SEEDS))} under paper",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help=f"epochs per run (default {EPOCHS}, the paper's)"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help="stop a run after N epochs without a better dev weighted F1 (early stopping; "
        "default: off, every run trains all its epochs as in the paper)",
    )
    cores = os.cpu_count() or 1
    p.add_argument("--jobs", type=int, default=cores, help=f"worker processes (default {cores})")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--no-estimate", action="store_true", help="skip the FLOP count at start")
    p.add_argument("--out", default=None, help="default: outputs/reproduce/<timestamp>")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    return p


PROG = "bridging-reproduce"
#: the seeds a run accepts (``seed=``): numpy's and Lightning's range
MAX_SEED = 2**32 - 1


def refuse(msg: str):
    """Print ``bridging-reproduce: error: <msg>`` (one line) and exit 2, before any work."""
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.stderr.flush()
    sys.exit(2)


def _check_distinct(flag: str, values, allowed: str, ok) -> None:
    """Refuse a value of ``flag`` outside ``allowed`` (``ok(v)`` false) or given twice."""
    given = " ".join(map(str, values))
    bad = [v for v in values if not ok(v)]
    if bad:
        refuse(f"{flag} {given}: {bad[0]} is not {allowed}")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        refuse(f"{flag} {given}: {twice[0]} given twice; expected distinct values")


def parse_args(argv=None):
    cores = os.cpu_count() or 1
    p = build_parser()
    args = p.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        refuse("--jobs and --threads must be at least 1")
    for flag, value in (("--epochs", args.epochs), ("--patience", args.patience)):
        if value is not None and value < 1:
            refuse(f"{flag} {value}: expected a whole number of epochs, at least 1")
    if args.jobs * args.threads > cores:
        refuse(
            f"--jobs {args.jobs} x --threads {args.threads} = {args.jobs * args.threads} "
            f"threads on {cores} cores: oversubscribed torch processes run several times "
            "slower; lower one of them"
        )
    if args.seeds is not None:
        _check_distinct(
            "--seeds",
            args.seeds,
            f"a whole number from 0 to {MAX_SEED}",
            lambda s: 0 <= s <= MAX_SEED,
        )
    if args.folds is not None:
        if args.protocol == "paper":
            refuse("--folds applies to --protocol loso only")
        folds = " ".join(map(str, FOLDS))
        _check_distinct("--folds", args.folds, f"a fold among {folds}", lambda k: k in FOLDS)
    for ov in args.overrides if args.protocol != "paper" else ():
        if ov.lstrip("+~").split("=", 1)[0] in ("data.protocol", "data.fold"):
            refuse(f"{ov}: with --protocol loso the folds are set by --folds")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    from bridging.data.records import DataError

    try:
        profile = lib.profile_for(args.data)
    except (DataError, OSError) as exc:
        print(f"bridging-reproduce: error: {exc}", file=sys.stderr)
        return 2
    if args.protocol == "auto":
        args.protocol = lib.default_protocol(profile)
        if args.folds is not None and args.protocol == "paper":
            print(
                f"bridging-reproduce: error: {args.data}: --folds: a MELD file runs the paper "
                "protocol (no sessions to leave out)",
                file=sys.stderr,
            )
            return 2
    defaults = lib.QUICK_DEFAULT_SEEDS if args.quick else lib.DEFAULT_SEEDS
    seeds = args.seeds or list(defaults[args.protocol])
    folds = None
    if args.protocol == "loso":
        if profile.name == "meld":
            print(
                f"bridging-reproduce: error: {args.data}: --protocol loso: MELD has no "
                "sessions to leave out (its dialogues have no IEMOCAP Ses01..Ses05 ids); use "
                "--protocol paper",
                file=sys.stderr,
            )
            return 2
        folds = sorted(args.folds or FOLDS)
    common = lib.common_overrides(
        epochs, args.label_set, args.quick, args.data, args.patience, args.overrides, profile
    )
    root = Path(args.out) if args.out else lib.default_out_dir()
    from bridging.report import ReportError

    try:
        summary = lib.reproduce(
            root,
            seeds,
            epochs,
            common,
            args.jobs,
            args.threads,
            estimate_first=not args.no_estimate,
            quick=args.quick,
            log=lambda msg: print(msg, flush=True),
            profile=profile,
            folds=folds,
        )
    except (ReportError, DataError) as exc:
        print(f"bridging-reproduce: error: {exc}", file=sys.stderr)
        return 2
    except lib.Refused as exc:  # before any work: a config or data error, one line
        msg, _, code = describe(exc.error)
        print(f"bridging-reproduce: error: {msg}", file=sys.stderr)
        return code
    except lib.Terminated as exc:  # SIGTERM / SIGINT: the workers are ended already
        print(f"bridging-reproduce: error: {exc} ({root})", file=sys.stderr)
        return 128 + exc.signum
    try:
        sys.stdout.write(summary["report"])
        sys.stdout.flush()
    except BrokenPipeError:
        return stdout_closed(PROG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
