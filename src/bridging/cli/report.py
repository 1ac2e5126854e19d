"""bridging-report: every run's metrics.json under some folders in one comparison table.

    bridging-report DIR... [--out report.md] [--csv report.csv] [--json report.json]
                    [--plots DIR] [--hparam KEY] [--margin POINTS] [--bootstrap N]
                    [--bootstrap-seed S]

DIR: run dirs, multirun dirs or any folder above them (searched recursively), or
metrics.json files. Prints the Markdown report (runs, mean ± std over seeds, best
configuration per experiment) on stdout; --out also writes it (with the plots linked),
--csv writes the runs table and, next to it, <name>.grouped.csv (mean/std over seeds),
--json all of it as one JSON object, --plots the PNGs (weighted F1 against T per alpha,
against the masking probabilities, the confusion matrices) that the runs allow. Metrics
are test metrics in %.

Claims: when the runs include the paper's comparison (bridging-reproduce's experiments:
teacher, audio_only, av_eval_speech_only, student_kd, masked, masked_nognn, audio_dropout,
and the reference rows logreg_a, logreg_av, annotation_ceiling), the report adds a Claims
section: each experiment's mean test weighted F1 with a 95% CI (bootstrap over seeds and
test dialogues), and one line per claim (the KD student is comparable to its teacher within
--margin points; the student, masked training, masked training without the GNN, audio
dropout beat the audio-only baseline; masked training beats the multimodal model evaluated
speech-only) with the paired difference per seed (same seed, same test dialogues), its
mean, its CI and a verdict (holds / does not hold / undecided). It needs each run's
test_predictions.npz (written by bridging-train, bridging-eval, bridging-reproduce); a claim
whose runs lack them, or whose seeds do not match, is skipped with the reason in its line.
--csv then also writes <name>.comparison.csv and <name>.claims.csv; --plots the comparison
figure and the confusion matrices teacher vs student and audio-only vs masked. Each claim
line also gives its power: the CI half-width h and the replicates a decision would need at
the spread observed, ceil(n (h / d)^2) (n: the seeds, or fold x seed pairs, now; d: the
distance of the mean from 0, or from the margin); an undecided verdict says it.

Leave one session out (runs whose metrics.json data summary says protocol loso, as
bridging-reproduce --protocol loso writes them): the folds are named in the data column (a
fold is a data set of its own, never a seed of another); the Claims section adds a table
(and --plots a figure) of each experiment's test weighted F1 per fold, pairs the claims by
(fold, seed), and its CIs come from a hierarchical bootstrap (folds, then seeds, then test
dialogues, resampled with replacement).

Model selection: the Spearman rank correlation between dev and test weighted F1 over the
runs with both, with n (per fold too under loso), in the report, --json and
<name>.selection.csv: whether choosing on dev tracks the test.

Per actor: each experiment's test weighted F1 on each actor's utterances (IEMOCAP: session
and gender, Ses01F ... Ses05M; under loso each actor is tested in the fold of its session),
mean over seeds, in a table (--plots: per_actor_wf1.png; --json: actors), and in the runs
table each run's worst-actor weighted F1 beside its weighted F1. It reads the speaker array
of the runs' test_predictions.npz; runs whose files lack it (written before it was recorded)
are left out, with a one-line note.

No output is ever one of the report's inputs (a run's metrics.json or test_predictions.npz,
also through a link): such an option is refused before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridging.cli.common import command_parser, stdout_closed


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("bridging-report", __doc__)
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
    p.add_argument("--json", metavar="FILE", help="write runs, groups and claims as JSON")
    p.add_argument(
        "--note",
        default=None,
        metavar="TEXT",
        help="a line printed under the report's title (e.g. that the runs are a smoke test)",
    )
    p.add_argument(
        "--margin",
        type=_non_negative,
        default=2.0,
        metavar="POINTS",
        help="claim 1 (student comparable to teacher) holds when the CI of student - teacher "
        "lies within ±POINTS wF1 points (default 2)",
    )
    p.add_argument(
        "--bootstrap",
        type=_resamples,
        default=5000,
        metavar="N",
        help="bootstrap resamples of the claims' confidence intervals (default 5000)",
    )
    p.add_argument(
        "--bootstrap-seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the bootstrap's random draws (default 0)",
    )
    return p


def _non_negative(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number of points, got {text!r}")
    return v


def _resamples(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 100:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 100, got {text!r}")
    return v


def planned_outputs(args) -> list[tuple[str, Path]]:
    """Every file the options would write: (option, path)."""
    from bridging.report.runs import ACTOR_PLOT_FILES, LOSO_PLOT_FILES, PLOT_FILES
    from bridging.report.tables import csv_siblings

    out = [("--out", args.out), ("--json", args.json), ("--csv", args.csv)]
    if args.csv:
        out += [("--csv", p) for p in csv_siblings(args.csv).values()]
    if args.plots:
        files = {**PLOT_FILES, **LOSO_PLOT_FILES, **ACTOR_PLOT_FILES}.values()
        out += [("--plots", Path(args.plots) / f) for f in files]
    return [(option, Path(path)) for option, path in out if path]


def _refuse_inputs(args) -> None:
    """Refuse an output that is one of the report's inputs (a run's metrics.json or its
    test_predictions.npz, through any link), before anything is written."""
    from bridging.data.predictions import PREDICTIONS_FILE
    from bridging.report.runs import find_metrics
    from bridging.utils.files import refuse_over_inputs

    inputs = []
    for metrics in find_metrics(args.dirs):
        inputs += [("a run's metrics.json", metrics)]
        inputs += [("a run's predictions", metrics.parent / PREDICTIONS_FILE)]
    refuse_over_inputs(planned_outputs(args), inputs, forceable=False)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from bridging.report import ReportError, build_report, write_plots
    from bridging.utils.files import OutputError, atomic_write_text

    keys = [k.strip() for item in args.hparam for k in item.split(",") if k.strip()]
    try:
        report = build_report(
            args.dirs,
            hparams=keys,
            margin=args.margin,
            n_boot=args.bootstrap,
            boot_seed=args.bootstrap_seed,
        )
        # read every run's predictions file (claims, per actor, worst actor): their errors
        # are reported here, before anything is written
        report.claims()
        report.actors()
        report.run_rows()
        _refuse_inputs(args)  # before anything is written
    except (ReportError, OutputError) as e:
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
    if args.json:
        import json

        atomic_write_text(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        print(f"bridging-report: wrote {args.json}", file=sys.stderr)
    text = report.markdown(plots=plots, note=args.note)
    if args.out:
        out = Path(args.out)
        atomic_write_text(out, report.markdown(plots=plots, relative_to=out.parent, note=args.note))
        print(f"bridging-report: wrote {out}", file=sys.stderr)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return stdout_closed("bridging-report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
