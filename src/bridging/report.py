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
report adds a Claims section (:mod:`bridging.report_claims`): each experiment's mean test wF1
with a bootstrap CI, and one line per claim of the paper with the paired difference over
seeds, its CI and a verdict, computed from the runs' saved test predictions.

``bridging-eval`` outputs (a metrics.json with a ``checkpoint`` key) are read too: they take
the experiment (suffixed ``/eval``), seed and hyper-parameters of the training run whose
checkpoint they evaluated, when that run's metrics.json is found.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridging.io import atomic_write_bytes, atomic_write_text

METRICS_FILE = "metrics.json"
#: the test metrics of the table, as (metrics key, CSV stem, Markdown header)
METRICS = (("wf1", "test_wf1", "wF1 %"), ("acc", "test_acc", "acc %"), ("mf1", "test_mf1", "mF1 %"))
#: row order of the recipes (others after them, alphabetically)
RECIPE_ORDER = {"teacher": 0, "student_kd": 1, "masked": 2}
#: plot file names written by :func:`write_plots`
PLOT_FILES = {
    "kd": "kd_wf1_vs_temperature.png",
    "masked": "masked_wf1_vs_mask.png",
    "confusion": "confusion_matrices.png",
    "comparison": "comparison_wf1.png",
    "teacher_vs_student": "confusion_teacher_vs_student.png",
    "audio_vs_masked": "confusion_audio_only_vs_masked.png",
}
KD_KEYS = ("kd.temperature", "kd.alpha")
MASK_DEFAULT_KEYS = ("mask.p_audio_full", "mask.p_other_full", "mask.p")


class ReportError(ValueError):
    """A report cannot be made: a missing folder, no metrics.json, a malformed one."""


# ---------------------------------------------------------------------------------------------
# reading runs
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One metrics.json, with the fields the report uses pulled out (``raw``: the whole)."""

    path: Path
    run_dir: Path
    experiment: str
    recipe: str
    modalities: tuple
    eval_modalities: tuple
    label_set: str
    label_names: list
    seed: int | None
    test: dict
    dev: dict | None
    best_epoch: int | None
    hparams: dict
    data: str
    raw: dict = field(repr=False)

    def value(self, key: str):
        """A hyper-parameter (``hparams[key]``), else a dotted path into the metrics."""
        if key in self.hparams:
            return self.hparams[key]
        if key == "data":
            return self.data
        node = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return _scalar(node)


def _scalar(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, sort_keys=True)


def find_metrics(dirs: Iterable) -> list[Path]:
    """Every metrics.json under ``dirs`` (folders searched recursively, files taken as
    they are), each once, in a stable order. Raises ReportError for a path that does not
    exist or when nothing is found."""
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise ReportError("no run directories given")
    found: dict[Path, Path] = {}
    for d in dirs:
        if not d.exists():
            raise ReportError(f"{d}: no such directory")
        if d.is_file():
            if d.name != METRICS_FILE:
                raise ReportError(f"{d}: not a directory (nor a {METRICS_FILE})")
            found.setdefault(d.resolve(), d)
            continue
        for root, subdirs, files in os.walk(d):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            if METRICS_FILE in files:
                p = Path(root) / METRICS_FILE
                found.setdefault(p.resolve(), p)
    if not found:
        raise ReportError(
            f"no {METRICS_FILE} found under {', '.join(str(d) for d in dirs)} "
            "(give run or multirun directories written by bridging-train)"
        )
    return sorted(found.values(), key=lambda p: str(p))


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot read: {e}") from e
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: malformed {METRICS_FILE}: not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise ReportError(f"{path}: malformed {METRICS_FILE}: expected a JSON object")
    return obj


def _check_split(path: Path, metrics: dict, split: str, required: bool) -> dict | None:
    res = metrics.get(split)
    if res is None and not required:
        return None
    if not isinstance(res, dict):
        raise ReportError(f"{path}: malformed {METRICS_FILE}: no '{split}' metrics object")
    for k, _, _ in METRICS:
        v = res.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            if not required:
                return None
            raise ReportError(
                f"{path}: malformed {METRICS_FILE}: '{split}.{k}' should be a number, got {v!r}"
            )
    return res


def _data_label(data) -> str:
    """A short name of the data a run used: the file (or format) and its utterance count."""
    if not isinstance(data, dict):
        return ""
    name = Path(data["path"]).name if data.get("path") else str(data.get("format") or "")
    n = 0
    for s in (data.get("splits") or {}).values():
        if isinstance(s, dict) and isinstance(s.get("utterances"), int):
            n += s["utterances"]
    return f"{name} ({n} utt)" if n else name


def _parent_of_eval(path: Path, metrics: dict) -> dict | None:
    """The training run's metrics for a bridging-eval output (found next to its checkpoint)."""
    ckpt = metrics.get("checkpoint")
    if not isinstance(ckpt, str) or not ckpt:
        return None
    for base in (Path(ckpt), path.parent / ckpt):
        cand = base.parent.parent / METRICS_FILE
        try:
            if cand.is_file() and cand.resolve() != path.resolve():
                parent = json.loads(cand.read_text(encoding="utf-8"))
                return parent if isinstance(parent, dict) else None
        except (OSError, ValueError):
            continue
    return None


def load_run(path) -> Run | None:
    """One metrics.json as a Run; None (with a note on stderr) for a bridging-eval output of
    another split than test. Raises ReportError naming the file when it is malformed."""
    path = Path(path)
    m = _read_json(path)
    parent = None
    if "checkpoint" in m and "experiment" not in m:
        split = m.get("split", "test")
        if split != "test":
            print(
                f"bridging-report: skipping {path}: an evaluation of the {split} split, not test",
                file=sys.stderr,
            )
            return None
        parent = _parent_of_eval(path, m) or {}
    test = _check_split(path, m, "test", required=True)
    dev = _check_split(path, m, "dev", required=False)
    if parent is not None:
        experiment = f"{parent['experiment']}/eval" if parent.get("experiment") else "eval"
        dev = None  # the parent's dev selection is not this evaluation's
    else:
        experiment = m.get("experiment")
    src = parent if parent is not None else m
    hparams = src.get("hparams") if isinstance(src.get("hparams"), dict) else {}
    seed = src.get("seed")
    best_epoch = src.get("best_epoch")

    def mods(v):
        return tuple(v) if isinstance(v, (list, tuple)) else (() if v is None else (str(v),))

    label_names = m.get("label_names")
    if not isinstance(label_names, list):
        confusion = test.get("confusion")
        n = len(confusion) if isinstance(confusion, list) else 0
        label_names = [str(i) for i in range(n)]
    return Run(
        path=path,
        run_dir=path.parent,
        experiment=str(experiment) if experiment is not None else path.parent.name,
        recipe=str(m.get("recipe") or ""),
        modalities=mods(m.get("modalities")),
        eval_modalities=mods(m.get("eval_modalities", m.get("modalities"))),
        label_set=str(m.get("label_set") or ""),
        label_names=[str(x) for x in label_names],
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        test=test,
        dev=dev,
        best_epoch=best_epoch if isinstance(best_epoch, int) else None,
        hparams={k: _scalar(v) for k, v in hparams.items()},
        data=_data_label(m.get("data")),
        raw=m,
    )


def load_runs(dirs: Iterable) -> list[Run]:
    """Every run under ``dirs`` (see :func:`find_metrics`)."""
    runs = [r for r in (load_run(p) for p in find_metrics(dirs)) if r is not None]
    if not runs:
        raise ReportError(f"no test metrics in any {METRICS_FILE} under the given directories")
    return runs


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def varying_hparams(runs: Sequence[Run], extra: Sequence[str] = ()) -> list[str]:
    """The hparams keys whose values differ between the runs that have them (sorted), then
    ``extra`` keys; ``data`` first when the runs used different data."""
    values: dict[str, set] = {}
    for r in runs:
        for k, v in r.hparams.items():
            values.setdefault(k, set()).add(v)
    keys = sorted(k for k, vs in values.items() if len(vs) > 1)
    if len({r.data for r in runs}) > 1:
        keys.insert(0, "data")
    for k in extra:
        if k not in keys:
            keys.append(k)
    return keys


def _sort_value(v):
    if v is None:
        return (2, 0, "")
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    return (1, 0, str(v))


def _fmt_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _mods(m: Sequence[str]) -> str:
    return "+".join(m)


def _pct(v: float) -> float:
    return 100.0 * float(v)


def _mean_std(xs: Sequence[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(xs)
    return mean, (statistics.stdev(xs) if len(xs) > 1 else None)


@dataclass
class Group:
    """Runs that differ only in their seed."""

    key: tuple
    runs: list[Run]

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]

    def stat(self, metric: str, split: str = "test") -> tuple[float | None, float | None]:
        """(mean, std) in % of ``split``'s ``metric`` over the runs (std None for one run)."""
        results = [r.test if split == "test" else r.dev for r in self.runs]
        xs = [100.0 * res[metric] for res in results if res is not None]
        if not xs:
            return None, None
        return _mean_std(xs)


@dataclass
class Report:
    """The runs, the hyper-parameter columns, the per-run rows and the seed groups."""

    runs: list[Run]
    hparam_keys: list[str]
    sources: list[str] = field(default_factory=list)
    #: the claims' options: margin of "comparable" (wF1 points), bootstrap resamples and seed
    margin: float = 2.0
    n_boot: int = 5000
    boot_seed: int = 0

    def __post_init__(self):
        self.runs = sorted(self.runs, key=self._row_key)
        self._claims = None

    def claims(self) -> dict | None:
        """The Claims section's data (:func:`bridging.report_claims.analyse`; computed once),
        None when the runs do not include the comparison. ReportError for a malformed
        predictions file."""
        if self._claims is None:
            from bridging.report_claims import analyse

            self._claims = {"result": analyse(self, self.margin, self.n_boot, self.boot_seed)}
        return self._claims["result"]

    # ---- identity ------------------------------------------------------------------------
    def _family(self, r: Run) -> tuple:
        return (r.experiment, r.recipe, r.modalities, r.eval_modalities, r.label_set, r.data)

    def _group_key(self, r: Run) -> tuple:
        hp = tuple(sorted((k, v) for k, v in r.hparams.items()))
        shown = tuple(r.value(k) for k in self.hparam_keys)
        return (*self._family(r), shown, hp)

    def _row_key(self, r: Run):
        return (
            RECIPE_ORDER.get(r.recipe, len(RECIPE_ORDER)),
            r.recipe,
            r.experiment,
            -len(r.modalities),
            r.modalities,
            -len(r.eval_modalities),
            r.eval_modalities,
            r.label_set,
            r.data,
            tuple(_sort_value(r.value(k)) for k in self.hparam_keys),
            _sort_value(r.seed),
            str(r.run_dir),
        )

    @property
    def groups(self) -> list[Group]:
        out: dict[tuple, Group] = {}
        for r in self.runs:  # already in row order
            out.setdefault(self._group_key(r), Group(self._group_key(r), [])).runs.append(r)
        return list(out.values())

    @property
    def has_repeats(self) -> bool:
        return any(len(g.runs) > 1 for g in self.groups)

    def best_per_family(self) -> list[Group]:
        """One group per (experiment, recipe, modalities, eval modalities, label set, data):
        the one with the best mean dev weighted F1 (never selected on test); groups without
        dev metrics only when they are alone in their family."""
        fams: dict[tuple, Group] = {}
        for g in self.groups:
            fam = self._family(g.first)
            cur = fams.get(fam)
            if cur is None:
                fams[fam] = g
                continue
            dev, best = g.stat("wf1", "dev")[0], cur.stat("wf1", "dev")[0]
            if dev is not None and (best is None or dev > best):
                fams[fam] = g
        return list(fams.values())

    # ---- rows ----------------------------------------------------------------------------
    def _display_dir(self, p: Path) -> str:
        rel = os.path.relpath(p.resolve(), Path.cwd().resolve())
        return str(p) if rel.startswith("..") else rel

    def run_columns(self) -> list[str]:
        return [
            "run_dir",
            "experiment",
            "recipe",
            "modalities",
            "eval_modalities",
            "label_set",
            *self.hparam_keys,
            *(c for _, c, _ in METRICS),
            "best_epoch",
            "seed",
        ]

    def group_columns(self) -> list[str]:
        stats = [f"{c}_{s}" for _, c, _ in METRICS for s in ("mean", "std")]
        return [
            "experiment",
            "recipe",
            "modalities",
            "eval_modalities",
            "label_set",
            *self.hparam_keys,
            "n",
            "seeds",
            *stats,
        ]

    def run_rows(self) -> list[dict]:
        """One dict per run, keyed by :meth:`run_columns` (metrics in %)."""
        rows = []
        for r in self.runs:
            row = {
                "run_dir": self._display_dir(r.run_dir),
                "experiment": r.experiment,
                "recipe": r.recipe,
                "modalities": _mods(r.modalities),
                "eval_modalities": _mods(r.eval_modalities),
                "label_set": r.label_set,
            }
            row.update({k: r.value(k) for k in self.hparam_keys})
            row.update({c: _pct(r.test[m]) for m, c, _ in METRICS})
            row.update({"best_epoch": r.best_epoch, "seed": r.seed})
            rows.append(row)
        return rows

    def group_rows(self, groups: Sequence[Group] | None = None) -> list[dict]:
        """One dict per seed group, keyed by :meth:`group_columns` (mean/std in %)."""
        rows = []
        for g in self.groups if groups is None else groups:
            r = g.first
            row = {
                "experiment": r.experiment,
                "recipe": r.recipe,
                "modalities": _mods(r.modalities),
                "eval_modalities": _mods(r.eval_modalities),
                "label_set": r.label_set,
            }
            row.update({k: r.value(k) for k in self.hparam_keys})
            row["n"] = len(g.runs)
            row["seeds"] = ",".join(_fmt_value(s) for s in g.seeds)
            for m, c, _ in METRICS:
                mean, std = g.stat(m)
                row[f"{c}_mean"] = mean
                row[f"{c}_std"] = std
            rows.append(row)
        return rows

    # ---- output --------------------------------------------------------------------------
    def runs_markdown(self) -> str:
        head = [
            "run",
            "experiment",
            "recipe",
            "trained on",
            "evaluated on",
            "labels",
            *self.hparam_keys,
            *(h for _, _, h in METRICS),
            "best epoch",
            "seed",
        ]
        body = []
        for row in self.run_rows():
            body.append(
                [
                    row["run_dir"],
                    row["experiment"],
                    row["recipe"],
                    row["modalities"],
                    row["eval_modalities"],
                    row["label_set"],
                    *(_fmt_value(row[k]) for k in self.hparam_keys),
                    *(f"{row[c]:.2f}" for _, c, _ in METRICS),
                    _fmt_value(row["best_epoch"]),
                    _fmt_value(row["seed"]),
                ]
            )
        return markdown_table(head, body)

    def groups_markdown(self, groups: Sequence[Group] | None = None) -> str:
        head = [
            "experiment",
            "recipe",
            "trained on",
            "evaluated on",
            "labels",
            *self.hparam_keys,
            "n",
            "seeds",
            *(h for _, _, h in METRICS),
        ]
        body = []
        for row in self.group_rows(groups):
            cells = []
            for _, c, _ in METRICS:
                mean, std = row[f"{c}_mean"], row[f"{c}_std"]
                cells.append(f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}")
            body.append(
                [
                    row["experiment"],
                    row["recipe"],
                    row["modalities"],
                    row["eval_modalities"],
                    row["label_set"],
                    *(_fmt_value(row[k]) for k in self.hparam_keys),
                    str(row["n"]),
                    row["seeds"],
                    *cells,
                ]
            )
        return markdown_table(head, body)

    def markdown(self, plots: dict | None = None, relative_to=None, note=None) -> str:
        """The whole report as Markdown: runs, mean ± std over seeds (when some
        configuration ran with several seeds), best configuration per family (when a sweep
        has several), and links to ``plots`` (name -> path) if given; ``note``: a line
        under the title."""
        n = len(self.runs)
        parts = ["# bridging report", ""]
        if note:
            parts += [f"**{note}**", ""]
        if self.sources:
            parts += [f"{n} run{'s' * (n != 1)} from {', '.join(self.sources)}.", ""]
        parts += ["Test metrics in %; wF1 = weighted F1, mF1 = macro F1.", ""]
        parts += ["## Runs", "", self.runs_markdown(), ""]
        if self.has_repeats:
            parts += ["## Mean ± std over seeds (sample std)", "", self.groups_markdown(), ""]
        best = self.best_per_family()
        if len(best) < len(self.groups):
            parts += [
                "## Best configuration per experiment (selected on mean dev weighted F1)",
                "",
                self.groups_markdown(best),
                "",
            ]
        claims = self.claims()
        if claims is not None:
            from bridging.report_claims import markdown as claims_markdown

            parts += [claims_markdown(claims).rstrip("\n"), ""]
        if plots:
            parts += ["## Plots", ""]
            base = Path(relative_to) if relative_to is not None else None
            for name, p in plots.items():
                link = os.path.relpath(Path(p), base) if base is not None else str(p)
                parts += [f"![{name}]({Path(link).as_posix()})", ""]
        return "\n".join(parts).rstrip() + "\n"

    def write_csv(self, path) -> tuple[Path, ...]:
        """The runs table at ``path``, the seed groups at ``<stem>.grouped.csv`` and, with the
        comparison's runs, ``<stem>.comparison.csv`` and ``<stem>.claims.csv``."""
        from bridging.report_claims import CLAIM_COLUMNS, COMPARISON_COLUMNS, flat_rows

        path = Path(path)

        def sibling(name):
            return path.with_name(f"{path.stem}.{name}{path.suffix or '.csv'}")

        atomic_write_text(path, _csv(self.run_columns(), self.run_rows()))
        atomic_write_text(sibling("grouped"), _csv(self.group_columns(), self.group_rows()))
        out = [path, sibling("grouped")]
        claims = self.claims()
        if claims is not None:
            for name, cols in (("comparison", COMPARISON_COLUMNS), ("claims", CLAIM_COLUMNS)):
                atomic_write_text(sibling(name), _csv(cols, flat_rows(claims[name])))
                out.append(sibling(name))
        return tuple(out)

    def to_json(self) -> dict:
        """The runs, the seed groups and the claims section, JSON-ready."""
        from bridging.report_claims import json_ready

        claims = self.claims()
        return {
            "sources": self.sources,
            "runs": self.run_rows(),
            "groups": self.group_rows(),
            "claims": None if claims is None else json_ready(claims),
        }


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(s) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    numeric = [
        all(_is_number(r[i]) for r in rows if r[i] != "") and any(r[i] != "" for r in rows)
        for i in range(len(head))
    ]
    lines = ["| " + " | ".join(cell(h) for h in head) + " |"]
    lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _is_number(s: str) -> bool:
    try:
        float(str(s).split(" ± ")[0])
    except ValueError:
        return False
    return True


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return round(v, 6)  # percentages: no float noise such as 62.00000000000001
    return v


def _csv(columns: Sequence[str], rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_csv_value(row.get(c)) for c in columns])
    return buf.getvalue()


def build_report(dirs: Iterable, hparams: Sequence[str] = (), **claims) -> Report:
    """Collect every metrics.json under ``dirs`` (run dirs, multirun dirs, any parent folder
    or metrics.json files) into a :class:`Report`; ``hparams``: columns always shown;
    ``claims``: ``margin``, ``n_boot``, ``boot_seed`` of the Claims section."""
    dirs = [str(d) for d in dirs]
    runs = load_runs(dirs)
    return Report(runs, varying_hparams(runs, list(hparams)), sources=dirs, **claims)


# ---------------------------------------------------------------------------------------------
# plots (matplotlib's object API with the Agg canvas: no pyplot, no global backend change)
# ---------------------------------------------------------------------------------------------


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100)


def save_figure(fig, path) -> Path:
    """A figure as a PNG, written atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


def _label_keys(report: Report, runs: Sequence[Run], skip: Sequence[str] = ()) -> list[str]:
    """The table's hyper-parameter columns that differ among ``runs`` (less ``skip``)."""
    return [
        k
        for k in report.hparam_keys
        if k not in skip and len({_fmt_value(r.value(k)) for r in runs}) > 1
    ]


def _context_label(r: Run, keys: Sequence[str], label_set: bool = False) -> str:
    """experiment (modalities[→eval modalities]) [label set] key=value..."""
    mods = _mods(r.modalities)
    if r.eval_modalities != r.modalities:
        mods += f"→{_mods(r.eval_modalities)}"
    bits = [f"{k}={_fmt_value(r.value(k))}" for k in keys if r.value(k) is not None]
    return " ".join([r.experiment, f"({mods})", *([r.label_set] if label_set else []), *bits])


def _contexts(report: Report, runs: Sequence[Run], skip: Sequence[str]) -> dict[str, list[Run]]:
    keys = _label_keys(report, runs, skip)
    many_sets = len({r.label_set for r in runs}) > 1
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(_context_label(r, keys, many_sets), []).append(r)
    return out


def _baselines(report: Report, like: Sequence[Run]) -> list[tuple[str, float]]:
    """Non-sweep reference levels for a plot of ``like`` runs: teacher-recipe runs evaluated
    on the same modalities with the same label set and data (e.g. the audio-only baseline)."""
    sets = {(r.eval_modalities, r.label_set, r.data) for r in like}
    out: dict[str, list[float]] = {}
    for r in report.runs:
        if r.recipe == "teacher" and (r.eval_modalities, r.label_set, r.data) in sets:
            out.setdefault(_context_label(r, ()), []).append(100.0 * r.test["wf1"])
    return [(k, statistics.fmean(v)) for k, v in sorted(out.items())][:4]


def _errorbar(ax, xs, ys, errs, **kw):
    yerr = None if all(e is None for e in errs) else [0.0 if e is None else e for e in errs]
    ax.errorbar(xs, ys, yerr=yerr, marker="o", capsize=3, **kw)


def plot_kd(report: Report):
    """Test weighted F1 against the temperature T, one line per alpha (mean ± std over seeds);
    one panel per student configuration; the teacher and same-eval baselines as dashed
    lines. None when no run has both kd.temperature and kd.alpha."""
    runs = [
        r for r in report.runs if all(isinstance(r.hparams.get(k), (int, float)) for k in KD_KEYS)
    ]
    if not runs:
        return None
    contexts = _contexts(report, runs, KD_KEYS)
    fig = _figure(6.0 * len(contexts), 4.4)
    axes = fig.subplots(1, len(contexts), squeeze=False)[0]
    for ax, (label, cruns) in zip(axes, contexts.items()):
        alphas = sorted({r.hparams["kd.alpha"] for r in cruns})
        temps = sorted({r.hparams["kd.temperature"] for r in cruns})
        for a in alphas:
            xs, ys, es = [], [], []
            for t in temps:
                vals = [
                    100.0 * r.test["wf1"]
                    for r in cruns
                    if r.hparams["kd.alpha"] == a and r.hparams["kd.temperature"] == t
                ]
                if vals:
                    mean, std = _mean_std(vals)
                    xs.append(t), ys.append(mean), es.append(std)
            _errorbar(ax, xs, ys, es, label=f"α={_fmt_value(a)}")
        teacher = [
            r.raw["teacher"]["test"]["wf1"]
            for r in cruns
            if isinstance(r.raw.get("teacher"), dict)
            and isinstance((r.raw["teacher"].get("test") or {}).get("wf1"), (int, float))
        ]
        styles = iter(["--", ":", "-.", (0, (5, 1))])
        if teacher:
            tm = _mods(cruns[0].raw["teacher"].get("eval_modalities") or ())
            ax.axhline(
                100.0 * statistics.fmean(teacher),
                color="black",
                ls=next(styles),
                lw=1,
                label=f"teacher ({tm or '?'})",
            )
        for name, level in _baselines(report, cruns):
            ax.axhline(level, color="gray", ls=next(styles, "--"), lw=1, label=name)
        ax.set_xticks(temps, [_fmt_value(t) for t in temps])
        ax.set_xlabel("temperature T")
        ax.set_ylabel(f"test weighted F1 (%) on {_mods(cruns[0].eval_modalities)}")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "distilled student: weighted F1 against T, per α (mean ± std over seeds)", fontsize=10
    )
    fig.tight_layout()
    return fig


def plot_masked(report: Report):
    """Test weighted F1 of the masked runs against each masking probability that varies
    (else p_audio_full, p_other_full, p): one panel per probability, one line per masked
    configuration (e.g. with and without the GNN), the mean ± std over the runs at each value
    (the other probabilities and seeds pooled); same-eval baselines as dashed lines. None
    without masked runs."""
    runs = [r for r in report.runs if r.recipe == "masked"]
    if not runs:
        return None

    def numeric(k):
        return all(isinstance(r.hparams.get(k), (int, float)) for r in runs)

    keys = [k for k in report.hparam_keys if k.startswith("mask.") and numeric(k)]
    if not keys:
        keys = [k for k in MASK_DEFAULT_KEYS if numeric(k)]
    if not keys:
        return None
    contexts = _contexts(report, runs, [k for k in report.hparam_keys if k.startswith("mask.")])
    baselines = _baselines(report, runs)
    fig = _figure(4.6 * len(keys), 4.4)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        values = sorted({r.hparams[key] for r in runs})
        for label, cruns in contexts.items():
            xs, ys, es = [], [], []
            for v in values:
                vals = [100.0 * r.test["wf1"] for r in cruns if r.hparams[key] == v]
                if vals:
                    mean, std = _mean_std(vals)
                    xs.append(v), ys.append(mean), es.append(std)
            _errorbar(ax, xs, ys, es, label=label)
        for (name, level), ls in zip(baselines, ["--", ":", "-.", (0, (5, 1))]):
            ax.axhline(level, color="gray", ls=ls, lw=1, label=name)
        ax.set_xticks(values, [_fmt_value(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel(f"test weighted F1 (%) on {_mods(runs[0].eval_modalities)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "masked training: weighted F1 against the masking probabilities (mean ± std over runs)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_confusions(report: Report, max_panels: int = 16):
    """A grid of test confusion matrices (rows gold, normalised per row; counts summed over
    the seeds), one panel per seed group, or, when there are more than ``max_panels`` groups
    (sweeps), per family with its best configuration on dev. None without confusions."""
    import numpy as np

    groups = report.groups
    if len(groups) > max_panels:
        groups = report.best_per_family()
    panels = []
    for g in groups[:max_panels]:
        mats = [
            np.asarray(r.test["confusion"], dtype=float)
            for r in g.runs
            if isinstance(r.test.get("confusion"), list)
        ]
        n = len(g.first.label_names)
        mats = [m for m in mats if m.shape == (n, n)]
        if mats:
            panels.append((g, sum(mats)))
    if not panels:
        return None
    shown = [r for g, _ in panels for r in g.runs]
    keys = _label_keys(report, shown)
    many_sets = len({r.label_set for r in shown}) > 1
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure(3.4 * ncols, 3.9 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    for ax, (g, cm) in zip(axes.flat, panels):
        r = g.first
        names = r.label_names
        row = cm.sum(1, keepdims=True)
        norm = np.divide(cm, row, out=np.zeros_like(cm), where=row > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        k = len(names)
        ax.set_xticks(range(k), names, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{norm[i, j]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
        mean, std = g.stat("wf1")
        wf1 = f"wF1 {mean:.1f}" + ("" if std is None else f"±{std:.1f}")
        label = textwrap.fill(_context_label(r, keys, many_sets), 44)
        title = f"{label}\n{wf1}, n={len(g.runs)}"
        ax.set_title(title, fontsize=7)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("gold", fontsize=7)
    fig.tight_layout()
    return fig


def make_figures(report: Report) -> dict:
    """name -> matplotlib Figure for every plot the runs allow (kd, masked, confusion, and
    with the comparison's runs: comparison, teacher_vs_student, audio_vs_masked)."""
    from bridging.report_figures import claim_figures

    figs = {
        "kd": plot_kd(report),
        "masked": plot_masked(report),
        "confusion": plot_confusions(report),
    }
    figs = {k: v for k, v in figs.items() if v is not None}
    figs.update(claim_figures(report.claims()))
    return figs


def write_plots(report: Report, out_dir) -> dict:
    """Write the plots the runs allow as PNGs in ``out_dir`` (atomically); name -> path."""
    out_dir = Path(out_dir)
    return {
        name: save_figure(fig, out_dir / PLOT_FILES[name])
        for name, fig in make_figures(report).items()
    }


__all__ = [
    "ReportError",
    "Run",
    "Group",
    "Report",
    "find_metrics",
    "load_run",
    "load_runs",
    "varying_hparams",
    "build_report",
    "markdown_table",
    "plot_kd",
    "plot_masked",
    "plot_confusions",
    "make_figures",
    "write_plots",
    "save_figure",
    "PLOT_FILES",
]
