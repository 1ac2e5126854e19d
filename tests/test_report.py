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
from bridging.report import PLOT_FILES, ReportError, build_report, find_metrics
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
        "per_class_f1": {n: mf1 for n in LABELS},
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
    write_run(root / "teacher/runs/t0", seed=0, wf1=0.60, acc=0.62, mf1=0.50)
    write_run(root / "teacher/runs/t1", seed=1, wf1=0.64, acc=0.66, mf1=0.56)
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
        "mF1 %", "best epoch", "seed",
    ]  # fmt: skip
    body = [line for line in runs.splitlines() if line.startswith("| ") and line != header]
    assert len(body) == N_FAKE
    assert "| 60.00 | 62.00 | 50.00 | 3 | 0 |" in runs
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
        "kd.cls_weight", "test_wf1", "test_acc", "test_mf1", "best_epoch", "seed",
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
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 3
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(PLOT_FILES.values())
