"""The report's tables: the :class:`Report` (runs, seed groups, best per family) as
Markdown, CSV and JSON, and :func:`build_report`."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridging.report.markdown import markdown_table
from bridging.report.runs import (
    METRICS,
    RECIPE_ORDER,
    Group,
    Run,
    fmt_value,
    identity_row,
    load_runs,
    pct,
    sort_value,
    varying_hparams,
)
from bridging.utils.files import atomic_write_text

#: the tables --csv writes next to its own file, ``<stem>.<name>.csv``
CSV_SIBLINGS = ("grouped", "selection", "comparison", "claims")


def csv_siblings(path) -> dict[str, Path]:
    """The files ``write_csv(path)`` may write besides ``path``: name -> path."""
    path = Path(path)
    return {n: path.with_name(f"{path.stem}.{n}{path.suffix or '.csv'}") for n in CSV_SIBLINGS}


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
        self._actors = None
        #: each run's predictions, read once (:func:`bridging.report.runs.load_predictions`)
        self.predictions_cache: dict = {}

    def selection(self) -> dict:
        """The model-selection diagnostic (:mod:`bridging.report.selection`): the Spearman
        rank correlation of dev and test wF1 over the runs with both, with n (per fold too
        under loso)."""
        from bridging.report.selection import selection_diagnostic

        return selection_diagnostic(self.runs)

    def claims(self) -> dict | None:
        """The Claims section's data (:func:`bridging.report.claims.analyse`; computed once),
        None when the runs do not include the comparison. ReportError for a malformed
        predictions file."""
        if self._claims is None:
            from bridging.report.claims import analyse

            self._claims = {"result": analyse(self, self.margin, self.n_boot, self.boot_seed)}
        return self._claims["result"]

    def actors(self) -> dict | None:
        """The per-actor section's data (:func:`bridging.report.actors.actor_view`;
        computed once), None when no run has a predictions file. ReportError for a
        malformed predictions file."""
        if self._actors is None:
            from bridging.report.actors import actor_view

            self._actors = {"result": actor_view(self, self.predictions_cache)}
        return self._actors["result"]

    def worst_actor(self, r: Run) -> tuple[str, float] | None:
        """(actor, test wF1 in %) of the run's worst actor
        (:func:`bridging.report.actors.run_worst_actor`); None when its predictions name no
        speakers."""
        from bridging.report.actors import run_worst_actor

        return run_worst_actor(r, self.predictions_cache)

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
            tuple(sort_value(r.value(k)) for k in self.hparam_keys),
            sort_value(r.seed),
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
            *_with_worst([c for _, c, _ in METRICS], WORST_COLUMNS),
            "best_epoch",
            "precision",
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
            row = {"run_dir": self._display_dir(r.run_dir), **identity_row(r)}
            row.update({k: r.value(k) for k in self.hparam_keys})
            row.update({c: pct(r.test[m]) for m, c, _ in METRICS})
            worst = self.worst_actor(r)
            row["test_worst_actor_wf1"] = None if worst is None else worst[1]
            row["worst_actor"] = None if worst is None else worst[0]
            row.update({"best_epoch": r.best_epoch, "precision": r.precision, "seed": r.seed})
            rows.append(row)
        return rows

    def group_rows(self, groups: Sequence[Group] | None = None) -> list[dict]:
        """One dict per seed group, keyed by :meth:`group_columns` (mean/std in %)."""
        rows = []
        for g in self.groups if groups is None else groups:
            r = g.first
            row = identity_row(r)
            row.update({k: r.value(k) for k in self.hparam_keys})
            row["n"] = len(g.runs)
            row["seeds"] = ",".join(fmt_value(s) for s in g.seeds)
            for m, c, _ in METRICS:
                mean, std = g.stat(m)
                row[f"{c}_mean"] = mean
                row[f"{c}_std"] = std
            rows.append(row)
        return rows

    # ---- output --------------------------------------------------------------------------
    def runs_markdown(self) -> str:
        rows = self.run_rows()
        # the worst actor's wF1 beside wF1, when some run's predictions name the speakers
        worst = any(row["test_worst_actor_wf1"] is not None for row in rows)
        metrics = [h for _, _, h in METRICS]
        if worst:
            metrics = _with_worst(metrics, ["worst actor wF1 %"])
        head = [
            "run",
            "experiment",
            "recipe",
            "trained on",
            "evaluated on",
            "labels",
            *self.hparam_keys,
            *metrics,
            "best epoch",
            "trained in",
            "seed",
        ]
        body = []
        for row in rows:
            cells = [f"{row[c]:.2f}" for _, c, _ in METRICS]
            if worst:
                v = row["test_worst_actor_wf1"]
                cells = _with_worst(cells, ["n/a" if v is None else f"{v:.2f}"])
            body.append(
                [
                    row["run_dir"],
                    row["experiment"],
                    row["recipe"],
                    row["modalities"],
                    row["eval_modalities"],
                    row["label_set"],
                    *(fmt_value(row[k]) for k in self.hparam_keys),
                    *cells,
                    fmt_value(row["best_epoch"]),
                    fmt_value(row["precision"]),
                    fmt_value(row["seed"]),
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
                    *(fmt_value(row[k]) for k in self.hparam_keys),
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
            from bridging.report.claims import markdown as claims_markdown

            parts += [claims_markdown(claims).rstrip("\n"), ""]
        from bridging.report.actors import markdown as actors_markdown

        actors = actors_markdown(self.actors())
        if actors:
            parts += [actors.rstrip("\n"), ""]
        from bridging.report.selection import markdown as selection_markdown

        selection = selection_markdown(self.selection())
        if selection:
            parts += [selection.rstrip("\n"), ""]
        if plots:
            parts += ["## Plots", ""]
            base = Path(relative_to) if relative_to is not None else None
            for name, p in plots.items():
                link = os.path.relpath(Path(p), base) if base is not None else str(p)
                parts += [f"![{name}]({Path(link).as_posix()})", ""]
        return "\n".join(parts).rstrip() + "\n"

    def write_csv(self, path) -> tuple[Path, ...]:
        """The runs table at ``path``, the seed groups at ``<stem>.grouped.csv``, the
        model-selection diagnostic at ``<stem>.selection.csv`` and, with the comparison's
        runs, ``<stem>.comparison.csv`` and ``<stem>.claims.csv``."""
        from bridging.report.claims import CLAIM_COLUMNS, COMPARISON_COLUMNS, flat_rows
        from bridging.report.selection import COLUMNS as SELECTION_COLUMNS

        path = Path(path)
        sibling = csv_siblings(path).__getitem__

        atomic_write_text(path, _csv(self.run_columns(), self.run_rows()))
        atomic_write_text(sibling("grouped"), _csv(self.group_columns(), self.group_rows()))
        atomic_write_text(sibling("selection"), _csv(SELECTION_COLUMNS, self.selection()["rows"]))
        out = [path, sibling("grouped"), sibling("selection")]
        claims = self.claims()
        if claims is not None:
            for name, cols in (("comparison", COMPARISON_COLUMNS), ("claims", CLAIM_COLUMNS)):
                atomic_write_text(sibling(name), _csv(cols, flat_rows(claims[name])))
                out.append(sibling(name))
        return tuple(out)

    def to_json(self) -> dict:
        """The runs, the seed groups, the claims section, the per-actor section and the
        model-selection diagnostic, JSON-ready."""
        from bridging.report.claims import json_ready

        claims = self.claims()
        return {
            "sources": self.sources,
            "runs": self.run_rows(),
            "groups": self.group_rows(),
            "claims": None if claims is None else json_ready(claims),
            "actors": self.actors(),
            "selection": self.selection(),
        }


#: the runs table's worst-actor columns (CSV), after test_wf1
WORST_COLUMNS = ("test_worst_actor_wf1", "worst_actor")


def _with_worst(metrics: list, worst) -> list:
    """``metrics`` (wF1 first) with ``worst`` inserted after wF1."""
    return [metrics[0], *worst, *metrics[1:]]


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
