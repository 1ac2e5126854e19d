"""The comparison report: every run's ``metrics.json`` under some folders in one table.

``bridging-report`` (``bridging.cli.report``) and ``notebooks/analysis.ipynb`` are thin layers
over this module::

    from bridging.report import build_report, write_plots

    report = build_report(["outputs/"])          # run dirs, multirun dirs, or metrics.json files
    print(report.markdown())                     # runs table, mean/std over seeds, best per family
    report.write_csv("report.csv")               # + report.grouped.csv
    write_plots(report, "plots/")                # PNGs: kd, masked, confusion matrices,
                                                 # the comparison and the confusion pairs

The runs table has one row per metrics.json: run dir, experiment, recipe, modalities trained
on and evaluated on, label set, the swept hyper-parameters (the ``hparams`` keys whose values
differ between the runs that have them, plus any asked for), test weighted F1 / accuracy /
macro F1 in %, best epoch, seed. The grouped table aggregates the runs that differ only in
their seed (mean and sample standard deviation, ddof=1). Selection (the best configuration
of a sweep) only ever looks at dev metrics, never test.

When the runs include the paper's comparison (``bridging-reproduce``'s experiments), the
report adds a Claims section (:mod:`bridging.report.claims`): each experiment's mean test wF1
with a bootstrap CI, and one line per claim of the paper with the paired difference over
seeds, its CI, its power (CI half-width, replicates a decision would need) and a verdict,
computed from the runs' saved test predictions. Runs of the leave-one-session-out protocol
(``data.protocol=loso`` in their metrics.json's data summary) are told apart by fold (their
data is named with it, so folds are never merged as seeds of one data set); their
comparison adds a per-fold table and figure and pairs the claims by (fold, seed), with a
hierarchical bootstrap (folds, then seeds, then test dialogues). A Model selection section
gives the Spearman rank correlation of dev and test wF1 over the runs with both
(:mod:`bridging.report.selection`). A Test weighted F1 per actor section
(:mod:`bridging.report.actors`) gives each experiment's test wF1 on each actor's utterances,
from the ``speaker`` array of the runs' predictions, and the runs table each run's
worst-actor wF1 beside its wF1.

The modules: :mod:`~bridging.report.runs` (reading runs and their predictions),
:mod:`~bridging.report.tables` (the :class:`Report`, its tables), :mod:`~bridging.report.markdown`,
:mod:`~bridging.report.claims` (the comparison's arms, the verdicts, the Claims section),
:mod:`~bridging.report.stats` (the bootstrap, intervals and power: the formulas),
:mod:`~bridging.report.actors`, :mod:`~bridging.report.selection`, and
:mod:`~bridging.report.figures` (every figure).

``bridging-eval`` outputs (a metrics.json with a ``checkpoint`` key) are read too: they take
the experiment (suffixed ``/eval``), seed and hyper-parameters of the training run whose
checkpoint they evaluated, when that run's metrics.json is found.
"""

from bridging.report.figures import (
    ACTOR_PLOT_FILES,
    LOSO_PLOT_FILES,
    PLOT_FILES,
    make_figures,
    plot_confusions,
    write_plots,
)
from bridging.report.markdown import markdown_table
from bridging.report.runs import (
    METRICS,
    METRICS_FILE,
    RECIPE_ORDER,
    Group,
    ReportError,
    Run,
    find_metrics,
    load_run,
    load_runs,
    varying_hparams,
)
from bridging.report.tables import Report, build_report

__all__ = [
    "ACTOR_PLOT_FILES",
    "LOSO_PLOT_FILES",
    "METRICS",
    "METRICS_FILE",
    "PLOT_FILES",
    "RECIPE_ORDER",
    "Group",
    "Report",
    "ReportError",
    "Run",
    "build_report",
    "find_metrics",
    "load_run",
    "load_runs",
    "make_figures",
    "markdown_table",
    "plot_confusions",
    "varying_hparams",
    "write_plots",
]
