"""bridging-report and the analysis notebook: fake runs with known numbers, real tiny runs."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bridging.cli.report import main as report_main
from bridging.report import ACTOR_PLOT_FILES, PLOT_FILES, ReportError, build_report, find_metrics
from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"
LABELS = ["hap", "sad", "neu", "ang"]
BASE_HP = {
    "model.seqcontext_nlayer": 4,
    "model.drop_rate": 0.1,
    "model.gnn": "rgcn_transformer",
    "model.rnn": "transformer",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(wf1, acc=None, mf1=None, confusion=None):
    acc = wf1 if acc is None else acc
    mf1 = wf1 if mf1 is None else mf1
    return {
        "loss": 1.0,
        "wf1": wf1,
        "acc": acc,
        "mf1": mf1,
        "per_class_f1": dict.fromkeys(LABELS, mf1),
        "confusion": confusion or [[5, 1, 0, 0], [0, 4, 2, 0], [1, 0, 6, 1], [0, 0, 1, 3]],
    }


def write_run(
    run_dir: Path,
    *,
    experiment="teacher",
    recipe="teacher",
    modalities=("a", "v"),
    eval_modalities=None,
    seed=24,
    wf1=0.5,
    acc=None,
    mf1=None,
    dev_wf1=None,
    hparams=None,
    best_epoch=3,
    **extra,
) -> Path:
    """A metrics.json shaped as bridging-train writes it (training.train), known numbers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {
        "experiment": experiment,
        "recipe": recipe,
        "modalities": list(modalities),
        "eval_modalities": list(eval_modalities or modalities),
        "label_set": "iemocap_4",
        "label_names": LABELS,
        "seed": seed,
        "test": result(wf1, acc, mf1),
        "dev": result(wf1 if dev_wf1 is None else dev_wf1),
        "best_epoch": best_epoch,
        "best_checkpoint": "checkpoints/best.ckpt",
        "epochs_run": 10,
        "data": {
            "format": "synthetic",
            "path": None,
            "label_set": "iemocap_4",
            "splits": {"train": {"utterances": 65}, "dev": {"utterances": 2}},
        },
        "config_hash": f"hash{seed}",
        "hparams": {**BASE_HP, **(hparams or {})},
        **extra,
    }
    path = run_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2))
    return path


KD_T = (1.0, 2.0, 4.0)
KD_ALPHA = (0.3, 0.7)


def kd_test(t, a):
    return 0.45 + 0.01 * t + 0.1 * a  # best on test: T=4, alpha=0.7


def kd_dev(t, a):
    return 0.60 - 0.01 * t - 0.1 * a  # best on dev: T=1, alpha=0.3


MASK_POINTS = [(0.0, 0.1), (0.0, 0.2), (0.1, 0.1), (0.1, 0.2)]  # (p_audio_full, p)


@pytest.fixture
def fake_runs(tmp_path) -> Path:
    """teacher x2 seeds, audio-only baseline, 3x2 KD grid (a multirun), masked grid of 4 and
    masked_nognn x2 (another multirun)."""
    root = tmp_path / "outputs"
    write_run(root / "teacher/runs/t0", seed=0, wf1=0.60, acc=0.62, mf1=0.50, precision="32-true")
    write_run(
        root / "teacher/runs/t1", seed=1, wf1=0.64, acc=0.66, mf1=0.56, precision="bf16-mixed"
    )
    write_run(root / "audio_only/runs/a0", experiment="audio_only", modalities=("a",), wf1=0.40)
    kd = root / "student_kd/multiruns/m"
    for i, (t, a) in enumerate((t, a) for t in KD_T for a in KD_ALPHA):
        hp = {"kd.temperature": t, "kd.alpha": a, "kd.cls_weight": 1.0, "kd.emb_kind": "triplet"}
        write_run(
            kd / str(i),
            experiment="student_kd",
            recipe="student_kd",
            modalities=("a",),
            wf1=kd_test(t, a),
            dev_wf1=kd_dev(t, a),
            hparams=hp,
            teacher={"modalities": ["a", "v"], "eval_modalities": ["a", "v"], "test": result(0.62)},
            agreement={"test": 0.8},
            kd={"temperature": t, "alpha": a},
        )
    masked = root / "masked/multiruns/m"
    for i, (paf, p) in enumerate(MASK_POINTS):
        hp = {"mask.p_none": "auto", "mask.p_audio_full": paf, "mask.p_other_full": 0.1}
        write_run(
            masked / str(i),
            experiment="masked",
            recipe="masked",
            eval_modalities=("a",),
            wf1=0.50 + paf + p,
            hparams={**hp, "mask.p": p},
            test_full=result(0.7),
            mask_policy={"p_none": 0.6},
        )
    for i, seed in enumerate((0, 1)):
        write_run(
            root / f"masked_nognn/runs/n{i}",
            experiment="masked_nognn",
            recipe="masked",
            eval_modalities=("a",),
            seed=seed,
            wf1=0.48 + 0.02 * i,
            hparams={
                "mask.p_none": "auto",
                "mask.p_audio_full": 0.1,
                "mask.p_other_full": 0.1,
                "mask.p": 0.2,
                "model.gnn": "none",
            },
        )
    return root


N_FAKE = 2 + 1 + len(KD_T) * len(KD_ALPHA) + len(MASK_POINTS) + 2


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------


def test_table_values_and_groups(fake_runs):
    report = build_report([fake_runs])
    assert len(report.runs) == N_FAKE
    # varying hparams only: kd.cls_weight, mask.p_other_full, model.drop_rate are constant
    assert report.hparam_keys == [
        "kd.alpha",
        "kd.temperature",
        "mask.p",
        "mask.p_audio_full",
        "model.gnn",
    ]
    rows = report.run_rows()
    assert [r["recipe"] for r in rows][:3] == ["teacher"] * 3  # teacher recipe first
    t0 = next(r for r in rows if r["experiment"] == "teacher" and r["seed"] == 0)
    assert t0["modalities"] == "a+v" and t0["eval_modalities"] == "a+v"
    assert (t0["test_wf1"], t0["test_acc"], t0["test_mf1"]) == (60.0, 62.0, 50.0)
    assert t0["kd.alpha"] is None and t0["model.gnn"] == "rgcn_transformer"
    st = [r for r in rows if r["recipe"] == "student_kd"]
    assert len(st) == 6
    for r in st:
        assert r["eval_modalities"] == "a"
        assert r["test_wf1"] == pytest.approx(100 * kd_test(r["kd.temperature"], r["kd.alpha"]))
    m = [r for r in rows if r["experiment"] == "masked"]
    assert {(r["mask.p_audio_full"], r["mask.p"]) for r in m} == set(MASK_POINTS)
    assert all(r["eval_modalities"] == "a" and r["modalities"] == "a+v" for r in m)

    groups = report.group_rows()
    assert len(groups) == N_FAKE - 2  # the teacher and masked_nognn pairs differ only in seed
    teacher = next(g for g in groups if g["experiment"] == "teacher")
    assert teacher["n"] == 2 and teacher["seeds"] == "0,1"
    assert teacher["test_wf1_mean"] == pytest.approx(62.0)
    assert teacher["test_wf1_std"] == pytest.approx(math.sqrt(8))  # sample std of 60, 64
    assert teacher["test_acc_mean"] == pytest.approx(64.0)
    assert teacher["test_mf1_mean"] == pytest.approx(53.0)
    assert teacher["test_mf1_std"] == pytest.approx(statistics.stdev([50.0, 56.0]))
    nognn = next(g for g in groups if g["experiment"] == "masked_nognn")
    assert (nognn["n"], nognn["test_wf1_mean"]) == (2, pytest.approx(49.0))
    assert nognn["test_wf1_std"] == pytest.approx(math.sqrt(2))
    single = next(g for g in groups if g["experiment"] == "audio_only")
    assert single["n"] == 1 and single["test_wf1_std"] is None

    # one per family, sweeps selected on dev (never on test)
    best = {g.first.experiment: g for g in report.best_per_family()}
    assert set(best) == {"teacher", "audio_only", "student_kd", "masked", "masked_nognn"}
    kd = best["student_kd"].first.hparams
    assert (kd["kd.temperature"], kd["kd.alpha"]) == (1.0, 0.3)


def test_markdown_output(fake_runs):
    md = build_report([fake_runs]).markdown()
    assert md.startswith("# bridging report")
    runs = md.split("## Runs")[1].split("##")[0]
    header = next(line for line in runs.splitlines() if line.startswith("| run |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols == [
        "run", "experiment", "recipe", "trained on", "evaluated on", "labels", "kd.alpha",
        "kd.temperature", "mask.p", "mask.p_audio_full", "model.gnn", "wF1 %", "acc %",
        "mF1 %", "best epoch", "trained in", "seed",
    ]  # fmt: skip
    body = [line for line in runs.splitlines() if line.startswith("| ") and line != header]
    assert len(body) == N_FAKE
    assert "| 60.00 | 62.00 | 50.00 | 3 | 32-true | 0 |" in runs
    assert "| 64.00 | 66.00 | 56.00 | 3 | bf16-mixed | 1 |" in runs
    assert "| 40.00 | 40.00 | 40.00 | 3 |  | 24 |" in runs  # a run from before: not recorded
    grouped = md.split("## Mean ± std over seeds")[1].split("##")[0]
    assert "| 2 | 0,1 | 62.00 ± 2.83 | 64.00 ± 2.83 | 53.00 ± 4.24 |" in grouped
    assert "| 1 | 24 | 40.00 | 40.00 | 40.00 |" in grouped  # audio-only: one seed, no std
    best = md.split("## Best configuration per experiment")[1]
    assert "| student_kd | student_kd | a | a | iemocap_4 | 0.3 | 1 |" in best


def test_cli_csv_markdown_plots(fake_runs, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = report_main([
        str(fake_runs / "teacher"), str(fake_runs / "audio_only"),
        str(fake_runs / "student_kd/multiruns/m"), str(fake_runs / "masked"),
        str(fake_runs / "masked_nognn"), str(fake_runs),  # overlapping: each run once
        "--out", str(out / "report.md"), "--csv", str(out / "report.csv"),
        "--plots", str(out / "plots"), "--hparam", "kd.cls_weight",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.startswith("# bridging report") and "| run |" in captured.out
    runs = read_csv(out / "report.csv")
    assert len(runs) == N_FAKE
    assert list(runs[0]) == [
        "run_dir", "experiment", "recipe", "modalities", "eval_modalities", "label_set",
        "kd.alpha", "kd.temperature", "mask.p", "mask.p_audio_full", "model.gnn",
        "kd.cls_weight", "test_wf1", "test_worst_actor_wf1", "worst_actor", "test_acc",
        "test_mf1", "best_epoch", "precision", "seed",
    ]  # fmt: skip
    t1 = next(r for r in runs if r["experiment"] == "teacher" and r["seed"] == "1")
    assert (float(t1["test_wf1"]), float(t1["test_acc"]), float(t1["test_mf1"])) == (64, 66, 56)
    assert t1["run_dir"].endswith(os.path.join("teacher", "runs", "t1"))
    assert t1["kd.alpha"] == "" and t1["best_epoch"] == "3"
    assert {r["kd.cls_weight"] for r in runs if r["recipe"] == "student_kd"} == {"1.0"}
    grouped = read_csv(out / "report.grouped.csv")
    assert list(grouped[0])[-8:] == [
        "n", "seeds", "test_wf1_mean", "test_wf1_std", "test_acc_mean", "test_acc_std",
        "test_mf1_mean", "test_mf1_std",
    ]  # fmt: skip
    g = next(r for r in grouped if r["experiment"] == "teacher")
    assert float(g["test_wf1_mean"]) == 62 and float(g["test_wf1_std"]) == pytest.approx(
        math.sqrt(8), abs=1e-5
    )
    md = (out / "report.md").read_text()
    assert md == captured.out.replace("](" + str(out) + "/", "](")  # links relative to report
    for name, fname in PLOT_FILES.items():
        png = out / "plots" / fname
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000, name
        assert f"![{name}](plots/{fname})" in md
    assert not list((out / "plots").glob(".*"))  # no temporary files left behind


def test_plots_skip_missing_categories(fake_runs, tmp_path, capsys):
    rc = report_main([str(fake_runs / "teacher"), "--plots", str(tmp_path / "p")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [PLOT_FILES["confusion"]]
    assert "Mean ± std over seeds" in capsys.readouterr().out
    rc = report_main([str(fake_runs / "audio_only"), "--plots", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert rc == 0 and "Mean ± std" not in out and "Best configuration" not in out


def test_nested_teacher_and_eval_outputs(fake_runs, tmp_path):
    sweep = tmp_path / "sweep"
    write_run(sweep / "teacher_abc", seed=24, wf1=0.7)  # a teacher trained for a KD sweep
    write_run(sweep / "0", experiment="student_kd", recipe="student_kd", modalities=("a",))
    # a bridging-eval output of the teacher's checkpoint, speech only
    ev = sweep / "eval_a"
    ev.mkdir()
    (ev / "metrics.json").write_text(json.dumps({
        "checkpoint": str(sweep / "teacher_abc/checkpoints/best.ckpt"), "recipe": "teacher",
        "modalities": ["a", "v"], "eval_modalities": ["a"], "split": "test",
        "label_set": "iemocap_4", "label_names": LABELS, "test": result(0.3),
    }))  # fmt: skip
    dev = sweep / "eval_dev"
    dev.mkdir()
    (dev / "metrics.json").write_text(json.dumps({
        "checkpoint": "x.ckpt", "recipe": "teacher", "split": "dev", "dev": result(0.3)
    }))  # fmt: skip
    report = build_report([sweep])
    rows = {r["experiment"]: r for r in report.run_rows()}
    assert set(rows) == {"teacher", "teacher/eval", "student_kd"}
    ev_row = rows["teacher/eval"]
    assert (ev_row["modalities"], ev_row["eval_modalities"]) == ("a+v", "a")
    assert (ev_row["seed"], ev_row["test_wf1"], ev_row["best_epoch"]) == (24, 30.0, 3)


def test_errors(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert report_main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert "bridging-report: error:" in err and f"{missing}: no such directory" in err

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    assert report_main([str(empty)]) == 2
    assert "no metrics.json found under" in capsys.readouterr().err

    bad = tmp_path / "bad/run3/metrics.json"
    write_run(tmp_path / "bad/run1")
    bad.parent.mkdir(parents=True)
    bad.write_text('{"experiment": "teacher", "test": ')
    assert report_main([str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: malformed metrics.json: not valid JSON" in err

    bad.write_text(json.dumps({"experiment": "teacher", "dev": result(0.5)}))
    with pytest.raises(ReportError, match=r"run3/metrics.json: malformed .*no 'test' metrics"):
        build_report([tmp_path / "bad"])
    bad.write_text(json.dumps({"test": {"wf1": "high", "acc": 0.1, "mf1": 0.1}}))
    with pytest.raises(ReportError, match=r"run3/metrics.json: .*'test.wf1' should be a number"):
        build_report([tmp_path / "bad"])
    bad.write_text("[1, 2]")
    with pytest.raises(ReportError, match=r"run3/metrics.json: .*expected a JSON object"):
        build_report([tmp_path / "bad"])
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(ReportError, match="not a directory"):
        find_metrics([other])


def test_tolerates_missing_and_extra_keys(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.json").write_text(
        json.dumps({"test": {"wf1": 0.5, "acc": 0.25, "mf1": 0.125}, "something": {"new": 1}})
    )
    report = build_report([tmp_path], hparams=["something.new", "kd.alpha"])
    (row,) = report.run_rows()
    assert row["experiment"] == "r" and row["seed"] is None and row["best_epoch"] is None
    assert (row["test_wf1"], row["test_acc"], row["test_mf1"]) == (50.0, 25.0, 12.5)
    assert row["something.new"] == 1 and row["kd.alpha"] is None
    assert "| 50.00 | 25.00 | 12.50 |" in report.markdown()


# ---------------------------------------------------------------------------------------------
# real runs and the notebook
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_multirun(tmp_path_factory) -> Path:
    """The real bridging-train on tiny data, seeds 0 and 1, one epoch each (one multirun:
    one process start instead of two, and the report reads the multirun layout)."""
    root = tmp_path_factory.mktemp("real")
    exe = Path(sys.executable).parent / "bridging-train"
    res = subprocess.run(
        [str(exe), "-m", *TINY, "trainer.max_epochs=1", "seed=0,1",
         f"hydra.sweep.dir={root}/multi"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "multi"


def test_report_on_real_runs(tiny_multirun, tmp_path):
    exe = Path(sys.executable).parent / "bridging-report"
    res = subprocess.run(
        [str(exe), str(tiny_multirun), "--csv", str(tmp_path / "r.csv"),
         "--plots", str(tmp_path / "plots")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    real = [json.loads((tiny_multirun / s / "metrics.json").read_text()) for s in "01"]
    runs = read_csv(tmp_path / "r.csv")
    assert sorted(r["seed"] for r in runs) == ["0", "1"]
    assert {r["experiment"] for r in runs} == {real[0]["experiment"]}
    for r in runs:
        m = real[int(r["seed"])]
        assert float(r["test_wf1"]) == pytest.approx(100 * m["test"]["wf1"], abs=1e-3)
        assert r["modalities"] == "+".join(m["modalities"])
    (g,) = read_csv(tmp_path / "r.grouped.csv")
    wf1 = [100 * m["test"]["wf1"] for m in real]
    assert g["n"] == "2" and g["seeds"] == "0,1"
    assert float(g["test_wf1_mean"]) == pytest.approx(statistics.fmean(wf1), abs=1e-3)
    assert float(g["test_wf1_std"]) == pytest.approx(statistics.stdev(wf1), abs=1e-3)
    assert "Mean ± std over seeds" in res.stdout
    assert (tmp_path / "plots" / PLOT_FILES["confusion"]).read_bytes()[:8] == PNG_MAGIC


def test_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))  # plain JSON: no nbformat needed
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        src = "".join(cell["source"])[:60]
        assert cell["outputs"] == [] and cell["execution_count"] is None, src


def test_notebook_runs(tiny_multirun, fake_runs, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    monkeypatch.setenv("BRIDGING_REPORT_DIR", os.pathsep.join([str(tiny_multirun), str(fake_runs)]))
    monkeypatch.setenv("BRIDGING_REPORT_PLOTS", str(tmp_path / "plots"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{N_FAKE + 2} runs" in texts
    md = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    table = next(m for m in md if m.startswith("| run |"))
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == N_FAKE + 3
    assert any("62.00 ± 2.83" in m for m in md)
    claims = next(m for m in md if m.startswith("## Claims"))
    assert "| 4 | masked training beats the multimodal model evaluated speech-only |" in claims
    # the real runs' predictions name the speakers; the fake runs' have no predictions
    actors = next(m for m in md if m.startswith("## Test weighted F1 per actor"))
    assert "| Ses05F | Ses05M |" in actors and "Left out of the per-actor table" in actors
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    # kd, masked, confusions, comparison, 2 pairs, per actor
    files = {**PLOT_FILES, **ACTOR_PLOT_FILES}
    assert len(pngs) == len(files)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(files.values())


# ---------------------------------------------------------------------------------------------
# predictions files, claims, reference rows, figures (issue 11, part 3)
# ---------------------------------------------------------------------------------------------

from bridging.data.predictions import (  # noqa: E402
    PREDICTIONS_FILE,
    Predictions,
    confusion_matrix,
    f1_scores,
)
from bridging.report.claims import verdict_beats, verdict_comparable  # noqa: E402
from bridging.report.stats import (  # noqa: E402
    arm_interval,
    bootstrap_draws,
    paired_difference,
)


def py_scores(gold, pred, k):
    """Plain-Python weighted F1, accuracy, macro F1, per-class F1 (torchmetrics' definitions:
    F1 0 without a true positive; weighted by gold support; macro over the classes with a
    gold label or a prediction); unknown gold (-100) left out, predictions outside 0..k-1
    are errors."""
    tp, fp, fn, sup = [0] * k, [0] * k, [0] * k, [0] * k
    for g, p in zip(gold, pred):
        if g < 0:
            continue
        sup[g] += 1
        if p == g:
            tp[g] += 1
        else:
            fn[g] += 1
            if 0 <= p < k:
                fp[p] += 1
    f1 = [2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else 0.0
          for c in range(k)]  # fmt: skip
    n = sum(sup)
    present = [c for c in range(k) if tp[c] + fp[c] + fn[c]]
    return {
        "wf1": sum(s * f for s, f in zip(sup, f1)) / n if n else 0.0,
        "acc": sum(tp) / n if n else 0.0,
        "mf1": sum(f1[c] for c in present) / len(present) if present else 0.0,
        "f1": f1,
    }


DIALOGUES = {"dA": 6, "dB": 5, "dC": 7, "dD": 4, "dE": 6}  # test dialogue -> utterances
N_UTT = sum(DIALOGUES.values())
GOLD = [(3 * i + u) % 4 for i, n in enumerate(DIALOGUES.values()) for u in range(n)]
DLG = [d for d, n in DIALOGUES.items() for _ in range(n)]
POS = [u for n in DIALOGUES.values() for u in range(n)]
#: experiment -> (trained on, evaluated on, share of utterances right); the right ones of a
#: more accurate experiment include a less accurate one's (same seed), so its wF1 is never lower
ARMS = {
    "teacher": (("a", "v"), ("a", "v"), 0.9),
    "student_kd": (("a",), ("a",), 0.75),
    "av_eval_speech_only": (("a", "v"), ("a",), 0.6),
    "audio_only": (("a",), ("a",), 0.5),
    "masked": (("a", "v"), ("a",), 0.3),
    "masked_nognn": (("a", "v"), ("a",), None),  # audio_only's, but better on dA, worse on dB
    "audio_dropout": (("a",), ("a",), 0.5),  # exactly audio_only's predictions
}
SEEDS = (0, 1, 2)


def fake_predictions(experiment: str, seed: int) -> list[int]:
    """Known predictions: the utterances ranked by a per-seed permutation, the first
    share * N right, the others predicted as the next class."""
    import numpy as np

    rank = np.random.default_rng(100 + seed).permutation(N_UTT)
    share = ARMS[experiment][2]
    if share is None:  # masked_nognn
        right = rank < round(0.5 * N_UTT)
        right = [True if d == "dA" else (False if d == "dB" else r) for d, r in zip(DLG, right)]
    else:
        right = rank < round(share * N_UTT)
    return [g if r else (g + 1) % 4 for g, r in zip(GOLD, right)]


def write_predictions(run_dir: Path, pred, gold=GOLD, shuffle_seed=None) -> Path:
    """A predictions file as bridging-train writes it (rows given in any order)."""
    import numpy as np

    probs = np.full((len(pred), 4), 0.1, dtype=np.float32)
    probs[np.arange(len(pred)), pred] = 0.7
    order = np.arange(len(pred))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(pred))
    p = Predictions.build(
        dialogue_id=np.asarray(DLG)[order],
        utterance_index=np.asarray(POS)[order],
        gold=np.asarray(gold)[order],
        pred=np.asarray(pred)[order],
        probs=probs[order],
        label_names=LABELS,
    )
    return p.save(run_dir / PREDICTIONS_FILE)


def write_comparison(root: Path, arms=ARMS, seeds=SEEDS, with_predictions=True) -> Path:
    """<root>/<experiment>/seed<N>/ as bridging-reproduce lays them out: metrics.json whose
    test metrics are computed here (plain Python) from known predictions, plus the
    predictions file."""
    for exp in arms:
        trained, evaluated, _ = ARMS[exp]
        for s in seeds:
            pred = fake_predictions(exp, s)
            sc = py_scores(GOLD, pred, 4)
            run = root / exp / f"seed{s}"
            path = write_run(
                run, experiment=exp, recipe="teacher" if "teacher" in exp else exp,
                modalities=trained, eval_modalities=evaluated, seed=s, wf1=sc["wf1"],
                acc=sc["acc"], mf1=sc["mf1"], hparams={},
            )  # fmt: skip
            m = json.loads(path.read_text())
            m["test"]["confusion"] = confusion_matrix(GOLD, pred, 4)[:, :4].tolist()
            m["data"]["splits"]["test"] = {"dialogues": len(DIALOGUES), "utterances": N_UTT}
            path.write_text(json.dumps(m))
            if with_predictions:
                write_predictions(run, pred, shuffle_seed=s)
    return root


def slow_bootstrap(arms_preds, n_boot, seed):
    """The bootstrap written as plain loops over the same draws as bootstrap_draws:
    arms_preds[arm][s] = predictions list of seed s; returns [arm][b] = mean over drawn seeds
    of the wF1 (points) on the drawn dialogues."""
    import numpy as np

    ids = list(DIALOGUES)
    s_n = len(arms_preds[0])
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, s_n, size=(n_boot, s_n))
    high = np.full((n_boot, s_n, 1), len(ids))
    dlg = rng.integers(0, high, size=(n_boot, s_n, len(ids)))
    out = [[] for _ in arms_preds]
    for b in range(n_boot):
        for a, preds in enumerate(arms_preds):
            vals = []
            for slot in range(s_n):
                s = int(seed_idx[b, slot])
                gold, pred = [], []
                for j in dlg[b, slot]:
                    for i, d in enumerate(DLG):
                        if d == ids[j]:
                            gold.append(GOLD[i])
                            pred.append(preds[s][i])
                vals.append(100 * py_scores(gold, pred, 4)["wf1"])
            out[a].append(sum(vals) / len(vals))
    return out


def test_predictions_file_roundtrip_and_scores(tmp_path):
    import numpy as np

    pred = fake_predictions("student_kd", 0)
    pred[3] = -1  # outside the label set (the annotation ceiling's exc in iemocap_4)
    gold = list(GOLD)
    gold[5] = -100  # unknown gold: left out of every score
    # DDP's sampler repeats utterances to even out the ranks: each is kept once
    p = Predictions.build(
        dialogue_id=DLG + DLG[:4], utterance_index=POS + POS[:4], gold=gold + gold[:4],
        pred=pred + pred[:4], probs=np.zeros((N_UTT + 4, 4)), label_names=LABELS,
    )  # fmt: skip
    assert len(p) == N_UTT
    assert list(p.dialogue_id) == sorted(DLG) and list(p.utterance_index) == POS
    path = p.save(tmp_path / "r" / PREDICTIONS_FILE)
    q = Predictions.load(path)
    assert q.same_items(p) and list(q.pred) == pred and q.label_names == tuple(LABELS)
    with np.load(path, allow_pickle=False) as z:  # plain numpy, no pickle
        assert sorted(z.files) == sorted(
            ["dialogue_id", "utterance_index", "gold", "pred", "probs", "label_names", "split"]
        )
    ref = py_scores(gold, pred, 4)
    s = q.scores()
    assert (s["wf1"], s["acc"], s["mf1"]) == pytest.approx((ref["wf1"], ref["acc"], ref["mf1"]))
    assert list(s["per_class_f1"].values()) == pytest.approx(ref["f1"])
    assert s["outside_label_set"] == 1 and sum(map(sum, s["confusion"])) == N_UTT - 2
    ids, conf = q.dialogues()
    assert ids == list(DIALOGUES) and conf.shape == (5, 4, 5) and conf.sum() == N_UTT - 1
    # a class never in gold nor predicted is left out of the macro average
    assert f1_scores([[2, 0, 0], [0, 0, 0], [1, 0, 3]])["mf1"] == pytest.approx((0.8 + 6 / 7) / 2)

    bad = tmp_path / "bad.npz"
    np.savez(bad, **{k: v for k, v in np.load(path).items() if k != "probs"})
    with pytest.raises(ValueError, match=r"bad.npz: probs: expected an array named 'probs'"):
        Predictions.load(bad)
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match=r"bad.npz: file: expected a numpy .npz archive"):
        Predictions.load(bad)


def test_bootstrap_matches_slow_reference():
    import numpy as np

    conf = {
        e: [Predictions.build(DLG, POS, GOLD, fake_predictions(e, s), np.zeros((N_UTT, 4)),
                              LABELS).dialogues()[1] for s in SEEDS]
        for e in ("student_kd", "audio_only")
    }  # fmt: skip
    res = paired_difference(conf["student_kd"], conf["audio_only"], n_boot=150, seed=7)
    a, b = (
        [fake_predictions(e, s) for s in SEEDS] for e in ("student_kd", "audio_only")
    )  # fmt: skip
    slow = slow_bootstrap([a, b], n_boot=150, seed=7)
    reps = [x - y for x, y in zip(*slow)]
    assert res["ci"] == pytest.approx(tuple(np.percentile(reps, [2.5, 97.5])), abs=1e-9)
    per_seed = [100 * (py_scores(GOLD, x, 4)["wf1"] - py_scores(GOLD, y, 4)["wf1"])
                for x, y in zip(a, b)]  # fmt: skip
    assert res["per_seed"] == pytest.approx(per_seed, abs=1e-9)
    assert res["mean"] == pytest.approx(statistics.fmean(per_seed), abs=1e-9)
    one = arm_interval(conf["audio_only"], n_boot=150, seed=7)
    assert one["ci"] == pytest.approx(tuple(np.percentile(slow[1], [2.5, 97.5])), abs=1e-9)

    # exactness: an arm against itself is exactly 0; perfect against always wrong is 100
    same = paired_difference(conf["audio_only"], conf["audio_only"], n_boot=500, seed=1)
    assert same["mean"] == 0.0 and same["ci"] == (0.0, 0.0)
    right = Predictions.build(DLG, POS, GOLD, GOLD, np.zeros((N_UTT, 4)), LABELS).dialogues()[1]
    wrong = [(g + 1) % 4 for g in GOLD]
    wrong = Predictions.build(DLG, POS, GOLD, wrong, np.zeros((N_UTT, 4)), LABELS).dialogues()[1]
    full = paired_difference([right] * 3, [wrong] * 3, n_boot=500, seed=1)
    assert full["per_seed"] == [100.0] * 3 and full["ci"] == (100.0, 100.0)
    # every resample draws, for each of its S slots, D_s dialogues of the drawn seed
    seed_idx, counts = bootstrap_draws([5, 3, 4], 400, 3)
    assert seed_idx.shape == (400, 3) and counts.shape == (400, 3, 5)
    assert (counts.sum(-1) == np.array([5, 3, 4])[seed_idx]).all()
    assert (counts[seed_idx == 1][:, 3:] == 0).all()
    assert np.array_equal(bootstrap_draws([5, 3, 4], 400, 3)[1], counts)  # fixed seed

    assert verdict_beats(0.1, 3.0) == "holds" and verdict_beats(-3.0, 0.0) == "does not hold"
    assert verdict_beats(-0.1, 2.0) == "undecided (CI spans 0)"
    assert verdict_comparable(-1.5, 1.9, 2.0) == "holds"
    assert verdict_comparable(-5.0, -2.5, 2.0) == "does not hold"
    assert verdict_comparable(-2.5, 1.0, 2.0) == "undecided (CI crosses ±2)"


def test_bootstrap_at_iemocap_scale():
    """The size of one claim (2 arms x 3 seeds x 1,600 utterances, 5,000 draws): an interval
    around the mean, the same for the same seed. Its speed is host-dependent, so it is
    measured by benchmarks/bench_bootstrap.py (BENCHMARKS.md), not asserted here."""
    import numpy as np

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 1600)
    dlg = np.sort(rng.integers(0, 31, 1600))
    confs = []
    for _ in range(2):
        arm = []
        for _ in range(3):
            pred = np.where(rng.random(1600) < 0.6, gold, rng.integers(0, 4, 1600))
            arm.append(Predictions.build(dlg.astype(str), np.arange(1600), gold, pred,
                                         np.zeros((1600, 4)), LABELS).dialogues()[1])  # fmt: skip
        confs.append(arm)
    res = paired_difference(*confs, n_boot=5000, seed=0)
    assert res["ci"][0] < res["mean"] < res["ci"][1]
    assert paired_difference(*confs, n_boot=5000, seed=0) == res


def claims_by_number(report) -> dict:
    return {c["number"]: c for c in report.claims()["claims"]}


def test_claims_on_a_fake_comparison(tmp_path, capsys):
    import numpy as np

    root = write_comparison(tmp_path / "repro")
    report = build_report([root], n_boot=200, boot_seed=5)
    claims = claims_by_number(report)
    assert sorted(claims) == [1, 2, 3, 4, 5, 6]
    pairs = {1: ("student_kd", "teacher"), 2: ("student_kd", "audio_only"),
             3: ("masked", "audio_only"), 4: ("masked", "av_eval_speech_only"),
             5: ("masked_nognn", "audio_only"), 6: ("audio_dropout", "audio_only")}  # fmt: skip
    for n, (a, b) in pairs.items():
        c = claims[n]
        assert (c["a"], c["b"], c["seeds"]) == (a, b, [0, 1, 2]), n
        pa = [fake_predictions(a, s) for s in SEEDS]
        pb = [fake_predictions(b, s) for s in SEEDS]
        diff = [100 * (py_scores(GOLD, x, 4)["wf1"] - py_scores(GOLD, y, 4)["wf1"])
                for x, y in zip(pa, pb)]  # fmt: skip
        assert c["differences"] == pytest.approx(diff, abs=1e-9), n
        assert c["mean"] == pytest.approx(statistics.fmean(diff), abs=1e-9), n
        slow = slow_bootstrap([pa, pb], n_boot=200, seed=5)
        ci = np.percentile([x - y for x, y in zip(*slow)], [2.5, 97.5])
        assert (c["ci_low"], c["ci_high"]) == pytest.approx(tuple(ci), abs=1e-9), n
    assert claims[1]["differences"][0] < -2 and claims[1]["verdict"] == "does not hold"
    assert claims[1]["margin"] == 2.0 and "within ±2 wF1 points" in claims[1]["text"]
    assert claims[2]["verdict"] == "holds" and claims[2]["ci_low"] > 0
    assert claims[3]["verdict"] == "does not hold" and claims[4]["verdict"] == "does not hold"
    assert claims[5]["verdict"] == "undecided (CI spans 0)"
    assert claims[6]["verdict"] == "does not hold"  # identical predictions: exactly [0, 0]
    assert (claims[6]["ci_low"], claims[6]["ci_high"], claims[6]["mean"]) == (0.0, 0.0, 0.0)
    # a wide margin makes the student comparable
    wide = claims_by_number(build_report([root], n_boot=200, boot_seed=5, margin=40))
    assert wide[1]["verdict"] == "holds" and wide[1]["ci_low"] == claims[1]["ci_low"]

    rows = {r["experiment"]: r for r in report.claims()["comparison"]}
    assert list(rows) == ["teacher", "av_eval_speech_only", "audio_only", "student_kd",
                          "masked", "masked_nognn", "audio_dropout"]  # fmt: skip
    wf1 = [100 * py_scores(GOLD, fake_predictions("masked", s), 4)["wf1"] for s in SEEDS]
    assert rows["masked"]["wf1_mean"] == pytest.approx(statistics.fmean(wf1))
    slow = slow_bootstrap([[fake_predictions("masked", s) for s in SEEDS]], 200, 5)[0]
    lo, hi = np.percentile(slow, [2.5, 97.5])
    assert (rows["masked"]["ci_low"], rows["masked"]["ci_high"]) == pytest.approx((lo, hi))

    # the CLI: Markdown lines, CSV, JSON
    out = tmp_path / "out"
    rc = report_main([
        str(root), "--csv", str(out / "r.csv"), "--json", str(out / "r.json"),
        "--bootstrap", "200", "--bootstrap-seed", "5", "--margin", "2.5",
    ])  # fmt: skip
    md = capsys.readouterr().out
    assert rc == 0
    section = md.split("## Claims")[1]
    c2 = claims[2]
    line = next(x for x in section.splitlines() if x.startswith("| 2 |"))
    assert line == (
        "| 2 | the KD student beats the audio-only baseline | student_kd − audio_only | 0,1,2 | "
        + ", ".join(f"{d:+.2f}" for d in c2["differences"])
        + f" | {c2['mean']:+.2f} | [{c2['ci_low']:+.2f}, {c2['ci_high']:+.2f}]"
        + f" | {c2['half_width']:.2f} | {c2['replicates_needed']} | holds |"
    )
    # power: the half-width and ceil(n (h / |mean|)^2) seeds; an undecided line says so
    assert c2["half_width"] == pytest.approx((c2["ci_high"] - c2["ci_low"]) / 2)
    assert c2["replicates"] == 3 and c2["replicates_needed"] == max(
        1, math.ceil(3 * (c2["half_width"] / abs(c2["mean"])) ** 2)
    )
    c5 = claims[5]
    line5 = next(x for x in section.splitlines() if x.startswith("| 5 |"))
    assert line5.endswith(
        f"| undecided (CI spans 0): CI half-width {c5['half_width']:.2f} points; about "
        f"{c5['replicates_needed']} seeds would decide it at this spread |"
    )
    assert c5["replicates_needed"] > 3
    assert "within ±2.5 wF1 points" in section
    assert "| 6 | audio dropout beats the audio-only baseline |" in section
    assert "200 resamples, RNG seed 5" in section
    csv_claims = read_csv(out / "r.claims.csv")
    assert [r["verdict"] for r in csv_claims][1:] == [
        "holds", "does not hold", "does not hold", "undecided (CI spans 0)", "does not hold"
    ]  # fmt: skip
    assert float(csv_claims[1]["ci_low"]) == pytest.approx(c2["ci_low"], abs=1e-6)
    assert csv_claims[1]["seeds"] == "0 1 2"
    comp = read_csv(out / "r.comparison.csv")
    assert comp[0]["experiment"] == "teacher" and comp[0]["eval_modalities"] == "a+v"
    js = json.loads((out / "r.json").read_text())
    assert js["claims"]["claims"][1]["mean"] == pytest.approx(c2["mean"])
    assert js["claims"]["bootstrap"] == {"resamples": 200, "seed": 5, "level": 0.95,
                                         "margin": 2.5}  # fmt: skip
    assert len(js["runs"]) == len(ARMS) * len(SEEDS)


def test_claims_refuse_unpaired_runs(tmp_path, fake_runs, capsys):
    root = write_comparison(tmp_path / "repro")
    (root / "audio_only" / "seed1" / PREDICTIONS_FILE).unlink()
    (root / "masked_nognn" / "seed2" / "metrics.json").unlink()
    (root / "audio_dropout").rename(tmp_path / "elsewhere")
    claims = claims_by_number(build_report([root], n_boot=200))
    assert sorted(claims) == [1, 2, 3, 4, 5]  # the optional 6th needs audio_dropout runs
    for n in (2, 3):
        assert claims[n]["verdict"] == "skipped" and claims[n]["mean"] is None
        assert claims[n]["reason"].startswith("no paired runs: audio_only: no test_predictions")
        assert str(root / "audio_only" / "seed1") in claims[n]["reason"]
    assert claims[5]["reason"] == (
        "no paired runs: seeds differ (masked_nognn 0,1; audio_only 0,1,2)"
    )
    assert claims[1]["verdict"] == "does not hold" and claims[4]["verdict"] == "does not hold"
    # different test data at one seed
    gold = list(GOLD)
    gold[0] = (gold[0] + 1) % 4
    run = root / "masked" / "seed2"
    write_predictions(run, fake_predictions("masked", 2), gold=gold)
    c4 = claims_by_number(build_report([root], n_boot=200))[4]
    assert c4["reason"].startswith(  # the run's metrics were computed on other labels
        f"no paired runs: masked: {run / PREDICTIONS_FILE} does not reproduce "
        f"{run / 'metrics.json'} (test wF1 "
    )
    m = json.loads((run / "metrics.json").read_text())
    m["test"]["wf1"] = py_scores(gold, fake_predictions("masked", 2), 4)["wf1"]
    (run / "metrics.json").write_text(json.dumps(m))
    c4 = claims_by_number(build_report([root], n_boot=200))[4]
    assert c4["reason"] == "no paired runs: different test data at seed 2"
    # the fixture's runs: no predictions files and seeds that do not match
    claims = claims_by_number(build_report([fake_runs], n_boot=200))
    assert claims[1]["reason"] == "no paired runs: seeds differ (student_kd 24; teacher 0,1)"
    assert claims[4]["reason"] == "no paired runs: no runs of av_eval_speech_only"
    assert "no test_predictions.npz in" in claims[3]["reason"]
    rc = report_main([str(fake_runs), "--bootstrap", "200"])
    md = capsys.readouterr().out
    assert rc == 0
    line = next(x for x in md.split("## Claims")[1].splitlines() if x.startswith("| 4 |"))
    assert line.endswith("| skipped: no paired runs: no runs of av_eval_speech_only |")
    assert "| audio_only | speech-only baseline | a | a | 24 | 40.00 | no predictions |" in md


def test_claims_errors_and_mismatched_predictions(tmp_path, capsys):
    import numpy as np

    root = write_comparison(tmp_path / "repro", arms=("student_kd", "audio_only"))
    # predictions that are not those of the run: the claim is skipped, saying so
    write_predictions(root / "audio_only" / "seed0", fake_predictions("masked", 0))
    c = claims_by_number(build_report([root], n_boot=200))[2]
    assert c["verdict"] == "skipped" and "does not reproduce" in c["reason"]
    # a malformed file: one error line naming the file and the field
    bad = root / "student_kd" / "seed1" / PREDICTIONS_FILE
    z = dict(np.load(bad))
    z["probs"] = z["probs"][:, :3]
    buf = bad.with_name("x.npz")
    np.savez(buf, **z)
    buf.replace(bad)
    assert report_main([str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bridging-report: error: {bad}: probs: expected floats of shape 28x4"]
    # a truncated file (a run killed while writing it): one line naming the file, no traceback
    bad.write_bytes(bad.read_bytes()[:200])
    assert report_main([str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"bridging-report: error: {bad}: file: expected a numpy .npz archive (File is not a zip "
        "file)"
    ]
    with pytest.raises(SystemExit):
        report_main([str(root), "--margin", "-1"])
    assert "--margin: expected a non-negative number" in capsys.readouterr().err


def titles_outside(fig) -> list[str]:
    """The suptitle and axes titles whose rendered box is not inside the canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    texts = [fig._suptitle] + [ax.title for ax in fig.axes]
    bad = []
    for t in texts:
        if t is None or not t.get_text():
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < 0 or bb.y0 < 0 or bb.x1 > w or bb.y1 > h:
            bad.append(t.get_text())
    return bad


def test_figures_and_titles_fit(tmp_path, fake_runs):
    from bridging.report import make_figures, write_plots
    from bridging.report.figures import confusion_figure

    root = write_comparison(tmp_path / "repro")
    report = build_report([root, fake_runs / "masked"], n_boot=200)
    figs = make_figures(report)
    assert {"comparison", "teacher_vs_student", "audio_vs_masked", "confusion"} <= set(figs)
    for name, fig in figs.items():
        assert titles_outside(fig) == [], name
    comp = figs["comparison"]
    assert "mean over seeds 0,1,2" in comp._suptitle.get_text().replace("\n", " ")
    ax = comp.axes[0]
    assert len(ax.get_xticklabels()) == len(ARMS)
    pair = figs["teacher_vs_student"]
    assert [a.title.get_text().split("\n")[0] for a in pair.axes[:2]] == [
        "teacher (a+v)", "student_kd (a)"
    ]  # fmt: skip
    assert "summed over seeds 0,1,2" in pair._suptitle.get_text().replace("\n", " ")
    # the counts shown are the seeds' summed confusions
    shown = sorted(int(t.get_text().split("\n")[0]) for t in pair.axes[1].texts)
    total = sum(confusion_matrix(GOLD, fake_predictions("student_kd", s), 4)[:, :4] for s in SEEDS)
    assert shown == sorted(total.ravel().tolist())
    paths = write_plots(report, tmp_path / "plots")
    for name in ("comparison", "teacher_vs_student", "audio_vs_masked"):
        assert paths[name].name == PLOT_FILES[name]
        assert paths[name].read_bytes()[:8] == PNG_MAGIC
    # the per-run confusion matrix of bridging-train, titled with the long headline
    headline = (
        "[masked_nognn] masked trained on a+v, evaluated on a (iemocap_4): test weighted F1 "
        "48.12  acc 50.31  macro F1 44.90  (best dev wF1 51.00 at epoch 17)"
    )
    assert titles_outside(confusion_figure([[1, 2], [3, 4]], ["hap", "sad"], headline)) == []
    six = ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert titles_outside(confusion_figure([[1] * 6] * 6, six, headline)) == []


def iemocap_actor(dialogue_id: str, code: int) -> str:
    """The actor of an IEMOCAP-named dialogue's speaker code, by hand: session + gender."""
    return dialogue_id[:5] + ("M", "F")[code]


def assert_speakers(p, dialogues) -> None:
    """``p.speaker`` is each row's actor, looked up by hand in the split's ``dialogues``."""
    by_id = {d.id: d for d in dialogues}
    assert p.speaker is not None and len(p.speaker) == len(p)
    expected = [
        iemocap_actor(d, int(by_id[d].speakers[u])) if d.startswith("Ses0") else
        f"{d}/{('M', 'F')[int(by_id[d].speakers[u])]}"
        for d, u in zip(p.dialogue_id.tolist(), p.utterance_index.tolist())
    ]  # fmt: skip
    assert p.speaker.tolist() == expected


def test_training_and_eval_write_predictions(tiny_multirun, tmp_path):
    """bridging-train's and bridging-eval's test metrics equal those recomputed from their
    predictions files, which hold every test utterance once, with its actor."""
    from bridging.runs.evaluate import evaluate

    for s in "01":
        run = tiny_multirun / s
        m = json.loads((run / "metrics.json").read_text())
        p = Predictions.load(run / PREDICTIONS_FILE)
        assert len(p) == m["data"]["splits"]["test"]["utterances"]
        assert len({(d, u) for d, u in zip(p.dialogue_id, p.utterance_index)}) == len(p)
        sc = p.scores()
        assert sc["confusion"] == m["test"]["confusion"]
        for k in ("wf1", "acc", "mf1"):
            assert sc[k] == pytest.approx(m["test"][k], abs=1e-6), k
        assert sc["per_class_f1"] == pytest.approx(m["test"]["per_class_f1"], abs=1e-6)
        assert p.probs.sum(1) == pytest.approx([1.0] * len(p), abs=1e-5)
        assert set(p.speaker) <= {f"Ses0{k}{g}" for k in range(1, 6) for g in "MF"}
        assert len(set(p.speaker)) >= 2
    out = tmp_path / "ev"
    ev = evaluate(tiny_multirun / "0" / "checkpoints" / "best.ckpt", modalities=["a"],
                  output_dir=out)  # fmt: skip
    p = Predictions.load(out / PREDICTIONS_FILE)
    assert p.scores()["confusion"] == ev["test"]["confusion"]
    assert p.scores()["wf1"] == pytest.approx(ev["test"]["wf1"], abs=1e-6)
    train = Predictions.load(tiny_multirun / "0" / PREDICTIONS_FILE)
    assert p.speaker.tolist() == train.speaker.tolist()


def test_masked_run_saves_its_speech_only_predictions(compose_cfg, tmp_path):
    """The masked recipe tests again on full input after the speech-only test; the file is
    the speech-only one, as its metrics.json's test."""
    from bridging.runs.experiment import train

    cfg = compose_cfg(["experiment=masked", *TINY, "trainer.max_epochs=1"])
    metrics = train(cfg, output_dir=tmp_path / "run")
    p = Predictions.load(tmp_path / "run" / PREDICTIONS_FILE)
    assert p.scores()["confusion"] == metrics["test"]["confusion"]
    assert p.scores()["wf1"] == pytest.approx(metrics["test"]["wf1"], abs=1e-6)
    assert metrics["eval_modalities"] == ["a"]


# ---------------------------------------------------------------------------------------------
# reference rows: logistic regression, annotation ceiling
# ---------------------------------------------------------------------------------------------


def tiny_datamodule(modalities=("a",)):
    from bridging.data.datamodule import IEMOCAPDataModule

    return IEMOCAPDataModule(
        modalities=list(modalities), batch_size=4,
        synthetic={"seed": 0, "n_dialogues": 16, "n_test_dialogues": 4, "min_len": 4,
                   "max_len": 12, "mean_len": 8},
    )  # fmt: skip


def test_logreg_run_dir(tmp_path):
    import numpy as np

    from bridging.runs.baselines import run_logreg

    dm = tiny_datamodule()
    m = run_logreg(dm, ["a", "v"], tmp_path / "lr", seed=3)
    saved = json.loads((tmp_path / "lr" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(m))
    for k in ("experiment", "recipe", "modalities", "eval_modalities", "label_set",
              "label_names", "seed", "test", "dev", "data"):  # fmt: skip
        assert k in saved, k
    assert (m["experiment"], m["recipe"], m["modalities"], m["seed"]) == (
        "logreg_av", "logreg", ["a", "v"], 3
    )  # fmt: skip
    p = Predictions.load(tmp_path / "lr" / PREDICTIONS_FILE)
    assert len(p) == dm.summary()["splits"]["test"]["utterances"]
    assert_speakers(p, dm.corpus.splits["test"])
    ref = py_scores(p.gold.tolist(), p.pred.tolist(), 4)
    assert m["test"]["wf1"] == pytest.approx(ref["wf1"]) and m["test"]["mf1"] == pytest.approx(
        ref["mf1"]
    )
    assert (p.pred == p.probs.argmax(1)).all()
    lr = m["logreg"]
    assert lr["l2"] in lr["grid"] and lr["features"] == 100 + 512
    assert lr["dev_wf1"][f"{lr['l2']:g}"] == max(lr["dev_wf1"].values()) == m["dev"]["wf1"]
    run = build_report([tmp_path / "lr"]).runs[0]
    assert (run.experiment, run.recipe, run.seed) == ("logreg_av", "logreg", 3)

    # the test split never selects: scrambled test labels change the test scores only
    dm2 = tiny_datamodule(("a", "v"))
    dm2.setup()
    test = dm2.splits["test"]
    known = test.labels != -100
    test.labels[known] = (test.labels[known] + 1) % 4
    m2 = run_logreg(dm2, ["a", "v"], tmp_path / "lr2", seed=3)
    assert m2["logreg"] == m["logreg"] and m2["dev"] == m["dev"]
    assert m2["test"]["wf1"] != m["test"]["wf1"]
    # a config works as well as a DataModule; the seed does not change the fit
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"data": {
        "_target_": "bridging.data.datamodule.IEMOCAPDataModule", "modalities": ["a"],
        "batch_size": 4, "synthetic": {"seed": 0, "n_dialogues": 16, "n_test_dialogues": 4,
                                       "min_len": 4, "max_len": 12, "mean_len": 8}}})  # fmt: skip
    m3 = run_logreg(cfg, ["a", "v"], tmp_path / "lr3", seed=5)
    assert m3["test"] == m["test"] and m3["seed"] == 5
    assert np.isfinite(m3["test"]["loss"])


def test_annotation_ceiling(tmp_path):
    import numpy as np

    from bridging.data.records import Corpus, Dialogue
    from bridging.data.synthetic.calibration import annotation_ceiling
    from bridging.runs.baselines import run_logreg, write_ceiling_run

    def dialogue(i, labels, latent):
        n = len(labels)
        return Dialogue(
            id=f"d{i}", speakers=np.zeros(n, np.int64), labels=np.asarray(labels, np.int64),
            features={"a": np.zeros((n, 2), np.float32)},
            latent=None if latent is None else np.asarray(latent, np.int64),
        )  # fmt: skip

    # iemocap_4 labels hap sad neu ang; latent 6-way hap sad neu ang exc fru
    labels = [[0, 0, 1, 2], [3, 3, 2, 1, 0]]
    latent = [[0, 4, 1, 2], [3, 5, 2, 2, 0]]  # exc and fru: outside the 4-way set, errors
    test = [dialogue(i, lab, lat) for i, (lab, lat) in enumerate(zip(labels, latent))]
    corpus = Corpus(
        splits={"train": [dialogue(9, [0], [0])], "test": test},
        label_names=("hap", "sad", "neu", "ang"), label_set="iemocap_4", source_format="synthetic",
    )  # fmt: skip
    res = annotation_ceiling(corpus)
    gold = [x for d in labels for x in d]
    pred = [{0: 0, 1: 1, 2: 2, 3: 3}.get(x, -1) for d in latent for x in d]
    ref = py_scores(gold, pred, 4)
    assert (res["wf1"], res["acc"], res["mf1"]) == pytest.approx(
        (ref["wf1"], ref["acc"], ref["mf1"])
    )
    assert res["acc"] == pytest.approx(6 / 9) and res["outside_label_set"] == 2
    # hap 2/3 right; sad 1/2 right; neu 2/2 right + 1 false; ang 1/2 right
    assert res["per_class_f1"] == pytest.approx(
        {"hap": 0.8, "sad": 2 / 3, "neu": 0.8, "ang": 2 / 3}
    )
    assert annotation_ceiling(corpus, split="dev") is None
    corpus.splits["test"][1].latent = None
    assert annotation_ceiling(corpus) is None  # real data: no latent emotions
    assert write_ceiling_run(corpus, tmp_path / "none") is None
    assert not (tmp_path / "none").exists()

    # the synthetic corpus keeps its latent emotions: a run dir on the same data as the others
    dm = tiny_datamodule()
    m = write_ceiling_run(dm, tmp_path / "ceiling")
    assert m is not None and m["test"]["wf1"] == annotation_ceiling(dm.corpus)["wf1"]
    p = Predictions.load(tmp_path / "ceiling" / PREDICTIONS_FILE)
    assert p.scores()["wf1"] == m["test"]["wf1"]
    assert_speakers(p, dm.corpus.splits["test"])
    assert len(p) == m["data"]["splits"]["test"]["utterances"]
    run_logreg(dm, ["a"], tmp_path / "logreg_a", seed=0)
    runs = {r.experiment: r for r in build_report([tmp_path]).runs}
    assert runs["annotation_ceiling"].data == runs["logreg_a"].data
    assert runs["annotation_ceiling"].seed is None


def test_ceiling_and_logreg_rows_in_the_claims(tmp_path):
    import numpy as np

    from bridging.data.records import Corpus, Dialogue
    from bridging.runs.baselines import write_ceiling_run

    root = write_comparison(tmp_path / "repro", arms=("teacher", "audio_only", "student_kd"))
    dialogues = []
    for d, n in DIALOGUES.items():
        idx = [i for i, x in enumerate(DLG) if x == d]
        lat = [GOLD[i] if i % 3 else 4 for i in idx]  # every third latent is exc: an error
        dialogues.append(Dialogue(d, np.zeros(n, np.int64), np.asarray([GOLD[i] for i in idx]),
                                  {"a": np.zeros((n, 1), np.float32)},
                                  latent=np.asarray(lat, np.int64)))  # fmt: skip
    corpus = Corpus({"test": dialogues}, tuple(LABELS), "iemocap_4", "synthetic")
    m = write_ceiling_run(corpus, root / "annotation_ceiling")
    assert m["test"]["outside_label_set"] == len([i for i in range(N_UTT) if i % 3 == 0])
    # the report names data by file and utterance count: give the ceiling the runs' data
    meta = json.loads((root / "audio_only" / "seed0" / "metrics.json").read_text())["data"]
    m["data"] = meta
    (root / "annotation_ceiling" / "metrics.json").write_text(json.dumps(m))
    # a logistic-regression row written like the others
    sc = py_scores(GOLD, GOLD, 4)
    lr = write_run(root / "logreg_a" / "seed0", experiment="logreg_a", recipe="logreg",
                   modalities=("a",), seed=0, wf1=sc["wf1"], hparams={}, data=meta)  # fmt: skip
    write_predictions(lr.parent, GOLD)
    rows = {r["experiment"]: r for r in build_report([root], n_boot=200).claims()["comparison"]}
    assert list(rows)[-2:] == ["logreg_a", "annotation_ceiling"]
    ceil = rows["annotation_ceiling"]
    ref = py_scores(GOLD, [g if i % 3 else -1 for i, g in enumerate(GOLD)], 4)
    assert ceil["wf1_mean"] == pytest.approx(100 * ref["wf1"]) and ceil["seeds"] == [None]
    assert ceil["ci_low"] <= ceil["wf1_mean"] <= ceil["ci_high"]
    assert (rows["logreg_a"]["ci_low"], rows["logreg_a"]["ci_high"]) == (100.0, 100.0)
    assert rows["logreg_a"]["note"].startswith("reference")


def test_reproduce_jobs_write_predictions_and_reference_rows(tiny_multirun, tmp_path):
    """bridging-reproduce's speech-only evaluation and its logistic-regression jobs leave
    predictions that reproduce their metrics; the plan has the reference rows."""
    from bridging.runs.reproduce import eval_speech_only, logreg_job, plan

    names = [j.name for j in plan([0, 1], ["data=tiny"])]
    # the fits are deterministic: once (with the first seed), not per seed
    assert {"logreg_a/seed0", "logreg_av/seed0", "annotation_ceiling"} <= set(names)
    assert "logreg_a/seed1" not in names
    out = tmp_path / "av_eval_speech_only" / "seed0"
    eval_speech_only(str(tiny_multirun / "0"), str(out), 0, 1)
    m = json.loads((out / "metrics.json").read_text())
    p = Predictions.load(out / PREDICTIONS_FILE)
    assert m["eval_modalities"] == ["a"] and len(p) == m["data"]["splits"]["test"]["utterances"]
    assert (
        p.speaker.tolist()
        == Predictions.load(tiny_multirun / "0" / PREDICTIONS_FILE).speaker.tolist()
    )
    assert p.scores()["confusion"] == m["test"]["confusion"]
    assert p.scores()["wf1"] == pytest.approx(m["test"]["wf1"], abs=1e-6)
    lr = tmp_path / "logreg_a" / "seed0"
    res = logreg_job([*TINY, "seed=0"], ["a"], str(lr), 0, 1)
    m = json.loads((lr / "metrics.json").read_text())
    assert res["wf1"] == m["test"]["wf1"] == Predictions.load(lr / PREDICTIONS_FILE).scores()["wf1"]
    assert (m["experiment"], m["modalities"], m["seed"]) == ("logreg_a", ["a"], 0)
    report = build_report([tmp_path])
    assert {r.experiment for r in report.runs} == {"av_eval_speech_only", "logreg_a"}
