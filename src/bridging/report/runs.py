"""Reading runs for the report: every metrics.json under some folders, as :class:`Run` rows,
and their seed groups (:class:`Group`)."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

METRICS_FILE = "metrics.json"
#: the test metrics of the table, as (metrics key, CSV stem, Markdown header)
METRICS = (("wf1", "test_wf1", "wF1 %"), ("acc", "test_acc", "acc %"), ("mf1", "test_mf1", "mF1 %"))
#: row order of the recipes (others after them, alphabetically)
RECIPE_ORDER = {"teacher": 0, "baseline": 1, "student_kd": 2, "masked": 3}
#: plot file names written by :func:`write_plots`
PLOT_FILES = {
    "kd": "kd_wf1_vs_temperature.png",
    "masked": "masked_wf1_vs_mask.png",
    "confusion": "confusion_matrices.png",
    "comparison": "comparison_wf1.png",
    "teacher_vs_student": "confusion_teacher_vs_student.png",
    "audio_vs_masked": "confusion_audio_only_vs_masked.png",
}
#: the plots of leave-one-session-out comparisons only (written by :func:`write_plots` too)
LOSO_PLOT_FILES = {"per_fold": "per_fold_wf1.png"}
#: the plot of runs whose predictions name the speakers (written by :func:`write_plots` too)
ACTOR_PLOT_FILES = {"per_actor": "per_actor_wf1.png"}
KD_KEYS = ("kd.temperature", "kd.alpha")
MASK_DEFAULT_KEYS = ("mask.p_audio_full", "mask.p_other_full", "mask.p")
#: a predictions file must reproduce its run's test wF1 to this (torchmetrics is float32)
TOLERANCE = 1e-5


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
    #: the training precision (``32-true``, ``bf16-mixed`` ...); None for runs made before
    #: it was recorded, and for the reference rows, which train nothing
    precision: str | None = None
    #: the split protocol of the run's data (docs/protocols.md): ``paper`` (also for runs
    #: made before it was recorded) or ``loso``, and under ``loso`` the fold (test session)
    protocol: str = "paper"
    fold: int | None = None
    #: the data set without the fold (``data`` names the fold too): what the folds of one
    #: leave-one-session-out comparison share
    dataset: str = ""

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
        check_regular(d, f"run directory or a {METRICS_FILE}")
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


def check_regular(path, what: str) -> None:
    """Refuse (a ReportError naming it) a ``path`` that is a FIFO, a device or a socket:
    reading it would hang or never end."""
    from bridging.utils.files import check_input_file

    try:
        check_input_file(path, what)
    except ValueError as e:
        raise ReportError(str(e)) from None


def _read_json(path: Path) -> dict:
    check_regular(path, METRICS_FILE)
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


def data_protocol(data) -> tuple[str, int | None, str | None]:
    """(protocol, fold, dev rule) of a run's data summary: ``("paper", None, ...)`` for the
    paper protocol and for runs made before the protocol was recorded."""
    if not isinstance(data, dict) or data.get("protocol") != "loso":
        return "paper", None, None
    fold = data.get("fold")
    fold = fold if isinstance(fold, int) and not isinstance(fold, bool) else None
    rule = data.get("dev_rule")
    return "loso", fold, rule if isinstance(rule, str) else None


def _data_label(data, with_fold: bool = True) -> str:
    """A short name of the data a run used: the file (or format; for synthetic data its
    preset), the first 8 hex digits of its content fingerprint, and its utterance count;
    under ``loso`` the protocol, the dev rule unless the default (next_session) and, with
    ``with_fold``, the fold (runs of different folds are different data, not seeds of one)."""
    if not isinstance(data, dict):
        return ""
    name = Path(data["path"]).name if data.get("path") else str(data.get("format") or "")
    synthetic = data.get("synthetic")
    if isinstance(synthetic, dict) and synthetic.get("preset"):
        name += f" {synthetic['preset']}"
    fingerprint = data.get("fingerprint")
    if isinstance(fingerprint, str) and fingerprint:
        name += f" #{fingerprint[:8]}"  # the corpus's content (Corpus.fingerprint)
    n = 0
    for s in (data.get("splits") or {}).values():
        if isinstance(s, dict) and isinstance(s.get("utterances"), int):
            n += s["utterances"]
    label = f"{name} ({n} utt)" if n else name
    protocol, fold, rule = data_protocol(data)
    if protocol == "paper":
        return label
    label += ", loso" + (f" fold {fold}" if with_fold and fold is not None else "")
    return label + (f", dev {rule}" if rule and rule != "next_session" else "")


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

    protocol, fold, _ = data_protocol(m.get("data"))
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
        precision=str(src["precision"]) if src.get("precision") else None,
        protocol=protocol,
        fold=fold,
        dataset=_data_label(m.get("data"), with_fold=False),
    )


def load_predictions(run, cache: dict | None = None) -> tuple:
    """The run's test predictions (a :class:`~bridging.data.predictions.Predictions`),
    checked against its metrics.json, as ``(predictions, None)``; ``(None, reason)`` when the
    file is absent or does not reproduce the metrics. A malformed file raises ReportError.
    ``cache``: path -> answer, filled here (the claims and the per-actor view share one)."""
    from bridging.data.predictions import PREDICTIONS_FILE, Predictions, PredictionsError

    cache = {} if cache is None else cache
    path = Path(run.run_dir) / PREDICTIONS_FILE
    if path in cache:
        return cache[path]
    if os.path.lexists(path):
        check_regular(path, f"{PREDICTIONS_FILE} archive")  # a FIFO would hang np.load
    if not path.is_file():
        out = (None, f"no {PREDICTIONS_FILE} in {run.run_dir}")
    else:
        try:
            preds = Predictions.load(path)
        except PredictionsError as e:
            raise ReportError(str(e)) from e
        if list(preds.label_names) != list(run.label_names):
            raise ReportError(
                f"{path}: label_names: expected {run.label_names} as in {run.path.name}"
            )
        wf1 = preds.scores()["wf1"]
        if abs(wf1 - float(run.test["wf1"])) > TOLERANCE:
            out = (
                None,
                f"{path} does not reproduce {run.path} (test wF1 {100 * wf1:.4f} vs "
                f"{100 * float(run.test['wf1']):.4f})",
            )
        else:
            out = (preds, None)
    cache[path] = out
    return out


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


def sort_value(v):
    if v is None:
        return (2, 0, "")
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    return (1, 0, str(v))


def fmt_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def mods_label(m: Sequence[str]) -> str:
    return "+".join(m)


def pct(v: float) -> float:
    return 100.0 * float(v)


def mean_std(xs: Sequence[float]) -> tuple[float, float | None]:
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
        return mean_std(xs)


def test_confusions(runs) -> list:
    """The test confusion matrices (numpy, float) of ``runs`` that have one of the label
    set's size (runs without one are left out)."""
    import numpy as np

    out = []
    for r in runs:
        if not isinstance(r.test.get("confusion"), list):
            continue
        m = np.asarray(r.test["confusion"], dtype=float)
        if m.shape == (len(r.label_names), len(r.label_names)):
            out.append(m)
    return out


def identity_row(r: Run) -> dict:
    """The columns that say what a run (or a seed group) is: experiment, recipe,
    modalities trained and evaluated on, label set."""
    return {
        "experiment": r.experiment,
        "recipe": r.recipe,
        "modalities": mods_label(r.modalities),
        "eval_modalities": mods_label(r.eval_modalities),
        "label_set": r.label_set,
    }
