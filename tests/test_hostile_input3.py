"""Hostile and careless input, round three (issue 29): bridging-reproduce's lock and resume of
its --out, its --seeds/--folds/overrides checked before any work; no command writes over any
of its inputs (by resolved identity: links and hard links); files inside folders checked for
type before they are read (FIFOs refused, never a hang); bridging-export refuses non-finite
weights and a full disk in one line; PyG's generated modules out of the temporary folder; the
memory check under ``ulimit -v``; ``inspect | head``; a report over both protocols."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import test_hostile_input2 as round2
from bridging.data.formats.cogmen import write_cogmen
from test_disk_full import needs_mounts, on_small_disk, one_error
from test_hostile_input import err_lines
from test_hostile_input2 import TINY, command, tiny_corpus, tree

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
#: round two's tiny model (one epoch on a COGMEN file): (checkpoint, data file, root)
model = round2.model


# ------------------------------------------------------------- 9. PyG's generated modules
PYG_MODULE = "torch_geometric.nn.conv."


def test_a_training_leaves_no_generated_module_in_the_temporary_folder(tmp_path):
    """PyG writes ``torch_geometric.nn.conv.*_propagate_*.py`` per process into the
    temporary folder and never removes them: under bridging they go to the user's cache
    (``$XDG_CACHE_HOME/bridging/pyg``), the same files for every process."""
    tmp, cache = tmp_path / "tmp", tmp_path / "cache"
    tmp.mkdir()
    env = {**ENV, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache)}
    cached = []
    for i in range(2):
        res = subprocess.run(
            [sys.executable, "-m", "bridging.cli.train", *TINY, f"hydra.run.dir={tmp_path}/r{i}"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert [p.name for p in tmp.iterdir() if p.name.startswith(PYG_MODULE)] == []
        # nothing else of bridging's there either (torch keeps its own per-user cache dir)
        assert all(p.name.startswith("torchinductor_") for p in tmp.iterdir())
        cached.append(sorted(p.name for p in (cache / "bridging" / "pyg").iterdir()))
    assert cached[0] == cached[1] and cached[0]  # reused, not one set per process
    assert all(name.startswith(PYG_MODULE) for name in cached[0])


def test_generated_modules_load_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    from bridging.utils import pyg

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    template = tmp_path / "t.jinja"
    template.write_text("def f():\n    return {{ value }}\n")
    mod = pyg.module_from_template("bridging_test_generated_f", str(template), "x", value=42)
    try:
        assert mod.f() == 42
    finally:
        sys.modules.pop("bridging_test_generated_f", None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "t.jinja"]  # removed


# ------------------------------------------------------------------- 7. export refuses NaN
NAN_WEIGHT = "model.clf.lin2.weight"


def _nan_checkpoint(src: Path, dst: Path) -> tuple[Path, int]:
    """A copy of checkpoint ``src`` with 3 NaN in the classifier's last weight; its size."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["state_dict"][NAN_WEIGHT].view(-1)[:3] = float("nan")
    torch.save(ckpt, dst)
    return dst, ckpt["state_dict"][NAN_WEIGHT].numel()


@pytest.mark.parametrize("out", ["m.pt", "m.onnx"])
def test_export_refuses_non_finite_weights_and_writes_nothing(model, tmp_path, out):
    bad, size = _nan_checkpoint(model[0], tmp_path / "nan.ckpt")
    for extra in ([], ["--no-check"]):
        res = command("export", bad, tmp_path / out, *extra, timeout=300)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f"bridging-export: error: {bad}: the model's weights are not finite: {NAN_WEIGHT} "
            f"holds 3 nan or inf of {size} values; refusing to export it: a model whose "
            "training diverged"
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.ckpt"]


@needs_mounts
@pytest.mark.parametrize("out", ["m.pt", "m.onnx"])
def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(model, tmp_path, out):
    mnt = tmp_path / "small"
    cmd = [sys.executable, "-m", "bridging.cli.export", str(model[0]), str(mnt / out)]
    code, err, shown = on_small_disk(mnt, "24k", cmd, after=f"ls -A {mnt} ; echo end")
    assert code == 2  # not SIGABRT from torch's zip writer
    line = one_error(err, "bridging-export")
    assert line.startswith(f"bridging-export: error: {mnt / out}: cannot write it: ")
    assert "no space left on device" in line
    assert shown.split() == ["end"]  # no .tmp, no model without its .json


def test_export_onto_a_folder_is_refused_as_such_even_forced(model, tmp_path):
    """An OUTPUT that is a folder: --force would not replace it, so the refusal does not
    offer it."""
    folder = tmp_path / "m.pt"
    folder.mkdir()
    for extra in ([], ["--force"]):
        res = command("export", model[0], folder, *extra, timeout=300)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f"bridging-export: error: {folder}: is a directory; give a file name"
        ]
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------------ 4. bridging-reproduce
@pytest.fixture
def two_cores(monkeypatch):
    """``--jobs 2`` against the project machines' 2 cores (test_reproduce's reason)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


QUICK = ["--quick", "--protocol", "paper", "--epochs", "1", "--no-estimate"]


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--seeds", "-1"], "--seeds -1: -1 is not a whole number from 0 to 4294967295"),
        (["--seeds", "0", "0"], "--seeds 0 0: 0 given twice; expected distinct values"),
        (["--seeds", "1", "4294967296"], "--seeds 1 4294967296: 4294967296 is not a whole "
         "number from 0 to 4294967295"),
        (["--protocol", "loso", "--folds", "2", "2"], "--folds 2 2: 2 given twice; expected "
         "distinct values"),
        (["--protocol", "loso", "--folds", "0"], "--folds 0: 0 is not a fold among 1 2 3 4 5"),
        (["data.dev=bogus"], "<synthetic>: data.dev='bogus': expected one of auto, "
         "next_session, within_train"),
        (["model.hidden_size=0"], "model.hidden_size=0: expected a whole number, at least 1"),
        (["nosuch.key=1"], "Could not override 'nosuch.key': Key 'nosuch' is not in struct"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs=-1: expected a whole number of "
         "epochs, at least 1 (Lightning would train forever)"),
    ],
)  # fmt: skip
def test_reproduce_refuses_bad_options_in_one_line_before_any_work(tmp_path, capsys, argv, msg):
    from bridging.cli.reproduce import main

    out = tmp_path / "repro"
    try:
        code = main([*QUICK, "--jobs", "1", "--out", str(out), *argv])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert err_lines(capsys) == [f"bridging-reproduce: error: {msg}"]
    assert not out.exists()  # no folder, no lock, no run


def test_a_second_reproduce_into_a_live_out_is_refused_at_once(tmp_path, capsys):
    from bridging.cli.reproduce import main
    from bridging.runs.rundir import LOCK_FILE

    out = tmp_path / "repro"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(120)",
            str(out / LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(out)
        assert main([*QUICK, "--seeds", "0", "--jobs", "1", "--out", str(out)]) == 2
        assert err_lines(capsys) == [
            f"bridging-reproduce: error: {out}: another bridging-reproduce is running into "
            f"this --out (it holds {LOCK_FILE}); refusing to start a second one: wait for it "
            "to end, or give another --out"
        ]
        assert tree(out) == before
    finally:
        holder.kill()
        holder.wait()


def test_reproduce_resumes_its_out_keeping_finished_runs(tmp_path, capsys, two_cores):
    """Into a finished --out: every run kept (not a byte changed), nothing trained; a run
    whose metrics.json is gone (unfinished) runs again, alone; another setting is refused
    naming the run and the setting, changing nothing."""
    from bridging.cli.reproduce import main

    out = tmp_path / "repro"
    argv = [*QUICK, "--seeds", "0", "--jobs", "2", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    runs = sorted(p.parent for p in out.rglob("metrics.json"))
    assert len(runs) == 10

    def run_bytes():
        return {str(r): tree(r) for r in runs}

    first = run_bytes()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resuming: 10 finished runs of an earlier start kept (same settings), 0 to run" in (
        printed
    )
    assert "test wF1" not in printed.split("all runs done")[0].split("0 to run")[1]
    assert run_bytes() == first
    (out / "masked" / "seed0" / "metrics.json").unlink()  # as if killed before its end
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resuming: 9 finished runs of an earlier start kept (same settings), 1 to run" in (
        printed
    )
    progress = [ln.strip() for ln in printed.splitlines() if ln.startswith("  [")]
    assert len(progress) == 1 and progress[0].startswith("[ 1/1] masked/seed0 ")
    rerun = out / "masked" / "seed0"
    assert json.loads((out / "reproduce.json").read_text())["kept_runs"] == sorted(
        str(r.relative_to(out)) for r in runs if r != rerun
    )
    after = run_bytes()
    assert {k: v for k, v in after.items() if k != str(rerun)} == {
        k: v for k, v in first.items() if k != str(rerun)
    }
    before = tree(out)
    assert main([*argv[:3], "--epochs", "2", *argv[5:]]) == 2
    assert err_lines(capsys) == [
        f"bridging-reproduce: error: {out / 'teacher' / 'seed0'}: a finished run of another "
        "configuration (trainer.max_epochs is 1 there, 2 in this comparison); refusing to mix "
        "it into this comparison: give the settings it was made with, or another --out"
    ]
    assert tree(out) == before


# ----------------------------------------------------------- 5. no output over an input
def test_report_never_writes_over_a_runs_files(model, tmp_path, capsys):
    """--out, --json, --csv (and its sibling CSVs), --plots files onto a run's metrics.json
    or predictions, directly, through a symbolic link or a hard link: refused before
    anything is written."""
    from bridging.cli.report import main as report_main

    run = model[2] / "run"
    metrics, npz = run / "metrics.json", run / "test_predictions.npz"
    before = tree(run)
    (tmp_path / "link.md").symlink_to(metrics)
    os.link(npz, tmp_path / "hard.json")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "confusion_matrices.png").symlink_to(npz)
    os.link(metrics, tmp_path / "r.grouped.csv")
    cases = [
        (["--out", str(metrics)], metrics, "a run's metrics.json", metrics, "--out"),
        (["--out", str(tmp_path / "link.md")], tmp_path / "link.md", "a run's metrics.json",
         metrics, "--out"),
        (["--json", str(tmp_path / "hard.json")], tmp_path / "hard.json", "a run's predictions",
         npz, "--json"),
        (["--csv", str(npz)], npz, "a run's predictions", npz, "--csv"),
        (["--csv", str(tmp_path / "r.csv")], tmp_path / "r.grouped.csv",
         "a run's metrics.json", metrics, "--csv"),
        (["--plots", str(plots)], plots / "confusion_matrices.png", "a run's predictions", npz,
         "--plots"),
    ]  # fmt: skip
    for argv, out, what, src, option in cases:
        assert report_main([str(run), "--bootstrap", "100", *argv]) == 2
        assert err_lines(capsys) == [
            f"bridging-report: error: {out}: is {what} {src} itself; refusing to write over "
            f"an input: give another {option}"
        ]
        assert tree(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hard.json", "link.md", "plots", "r.grouped.csv"
    ]  # fmt: skip
    assert [p.name for p in plots.iterdir()] == ["confusion_matrices.png"]


def test_predict_never_writes_over_the_data_the_model_was_trained_on(model, tmp_path, capsys):
    """Without data=..., predict reads the checkpoint's own data file: an output that is it
    (or a hard link to it) is refused, even with overwrite=true."""
    from bridging.cli.predict import main as predict_main
    from test_hostile_input import cli

    ckpt, data, _ = model
    keep = data.read_bytes()
    hard = tmp_path / "preds.csv"
    os.link(data, hard)
    for out in (data, hard):
        args = [
            f"ckpt_path={ckpt}",
            f"output={out}",
            "overwrite=true",
            f"hydra.run.dir={tmp_path}/p",
        ]
        assert cli(predict_main, *args) == 2
        assert err_lines(capsys) == [
            f"bridging-predict: error: output={out}: is the input data {data} itself; refusing "
            "to write over an input, even when forced: give another output"
        ]
    assert data.read_bytes() == keep


def test_predict_audio_never_writes_over_a_recording_of_its_manifest(tmp_path):
    """Refused before the checkpoint is read: a wav the manifest lists, directly or through
    a symbolic or hard link, even with --force."""
    import numpy as np

    from bridging.speech.audio import write_wav

    folder = tmp_path / "talk"
    folder.mkdir()
    wavs = [write_wav(folder / f"u{i}.wav", np.zeros(1600, np.float32)) for i in range(2)]
    (folder / "manifest.csv").write_text("file,speaker\nu0.wav,M\nu1.wav,F\n")
    keep = {w: w.read_bytes() for w in wavs}
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"never read")
    (tmp_path / "link.csv").symlink_to(wavs[1])
    os.link(wavs[1], tmp_path / "hard.csv")
    for out in (wavs[1], tmp_path / "link.csv", tmp_path / "hard.csv"):
        res = command("predict_audio", ckpt, folder, out, "--force", timeout=120)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f"bridging-predict-audio: error: {out}: is a recording listed in "
            f"{folder / 'manifest.csv'}, line 3: {wavs[1]} itself; refusing to write over an "
            "input, even when forced: give another OUTPUT"
        ]
    assert {w: w.read_bytes() for w in wavs} == keep


def test_export_import_and_convert_refuse_a_hard_link_to_their_input(model, tmp_path, capsys):
    from bridging.cli.data import main as data_main

    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(model[0].read_bytes())
    keep = ckpt.read_bytes()
    os.link(ckpt, tmp_path / "m.pt")
    res = command("export", ckpt, tmp_path / "m.pt", "--force", timeout=300)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"bridging-export: error: {tmp_path / 'm.pt'}: is the checkpoint {ckpt} itself; "
        "refusing to write over an input, even when forced: give another OUTPUT"
    ]
    res = command("import_cogmen", ckpt, tmp_path / "m.pt", "--force", timeout=300)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"bridging-import-cogmen: error: {tmp_path / 'm.pt'}: is the reference checkpoint "
        f"{ckpt} itself; refusing to write over an input, even when forced: give another "
        "OUT.ckpt"
    ]
    assert ckpt.read_bytes() == keep
    corpus = tmp_path / "corpus"
    assert data_main(["convert", str(model[1]), str(corpus)]) == 0
    capsys.readouterr()
    before = tree(corpus)
    meta = corpus / "meta.json"
    assert data_main(["convert", str(meta), str(corpus), "--force"]) == 2
    assert err_lines(capsys) == [
        f"bridging-data: error: {corpus}: holds the input {meta}; refusing to write over an "
        "input, even when forced: give another OUT"
    ]
    assert tree(corpus) == before


def test_force_is_not_offered_for_a_folder_it_would_refuse(tmp_path, capsys):
    from bridging.cli.data import main as data_main

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine")
    pkl = tmp_path / "d.pkl"
    write_cogmen(tiny_corpus(), pkl)
    msg = (
        f"bridging-data: error: {notes}: exists and is not a bridging corpus; refusing to "
        "replace it, even with --force (which replaces a bridging corpus only): remove it or "
        "give another OUT"
    )
    tiny = ["--n-dialogues", "16", "--sizes", "a=4,v=4"]
    for argv in (["convert", str(pkl), str(notes)], ["synth", str(notes), *tiny]):
        for force in ([], ["--force"]):
            assert data_main([*argv, *force]) == 2
            assert err_lines(capsys) == [msg]
    assert data_main(["synth", str(notes), "--layout", "cogmen", *tiny, "--force"]) == 2
    assert err_lines(capsys) == [f"bridging-data: error: {notes}: is a directory; give a file name"]
    assert sorted(p.name for p in notes.iterdir()) == ["a.txt"]


# ------------------------------------------------------ 6. FIFOs inside folders: refused
def fifo_line(path, what) -> str:
    return f"{path}: is a FIFO (named pipe), not a regular file or a directory; expected a {what}"


def _native_corpus(tmp_path) -> Path:
    from bridging.data.formats.native import write_native

    return write_native(tiny_corpus(), tmp_path / "corpus")


@pytest.mark.parametrize("name, what", [("train.safetensors", "safetensors file"),
                                        ("meta.json", "JSON file")])  # fmt: skip
def test_a_fifo_inside_a_native_corpus_is_refused_by_inspect_and_train(tmp_path, name, what):
    corpus = _native_corpus(tmp_path)
    (corpus / name).unlink()
    os.mkfifo(corpus / name)
    res = command("data", "inspect", corpus, timeout=120)  # a hang fails, not waits
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"bridging-data: error: {fifo_line(corpus / name, what)}"]
    run = tmp_path / "run"
    res = command(
        "train", *TINY, "data=iemocap", f"data.path={corpus}", f"hydra.run.dir={run}", timeout=300
    )
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"bridging-train: error: {fifo_line(corpus / name, what)}"]
    assert not run.exists()


@pytest.mark.parametrize("name", ["metrics.json", "test_predictions.npz"])
def test_a_fifo_inside_a_report_folder_is_refused(model, tmp_path, name):
    """The metrics.json of a run found in a folder; the predictions the claims read."""
    import shutil

    import test_reproduce_loso as tl

    if name == "metrics.json":
        run = tmp_path / "runs" / "run"
        shutil.copytree(model[2] / "run", run)
    else:  # a comparison: its claims read every run's predictions
        tl.write_loso_comparison(tmp_path / "runs", folds=(1,), seeds=(0,))
        run = tmp_path / "runs" / "teacher" / "fold1" / "seed0"
    (run / name).unlink()
    os.mkfifo(run / name)
    res = command("report", tmp_path / "runs", "--out", tmp_path / "r.md", timeout=120)
    assert res.returncode == 2
    what = "metrics.json" if name == "metrics.json" else "test_predictions.npz archive"
    assert res.stderr.splitlines() == [f"bridging-report: error: {fifo_line(run / name, what)}"]
    assert not (tmp_path / "r.md").exists()


def test_a_fifo_in_a_manifest_folder_is_refused(tmp_path):
    folder = tmp_path / "talk"
    folder.mkdir()
    os.mkfifo(folder / "manifest.csv")
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"never read")
    res = command("predict_audio", ckpt, folder, tmp_path / "p.csv", timeout=120)
    assert res.returncode == 2
    line = fifo_line(folder / "manifest.csv", "CSV file")
    assert res.stderr.splitlines() == [f"bridging-predict-audio: error: {line}"]
    # a wav the manifest lists: its reader refuses it the same way (in a process: no hang)
    (folder / "manifest.csv").unlink()
    os.mkfifo(folder / "u0.wav")
    (folder / "manifest.csv").write_text("file,speaker\nu0.wav,M\n")
    code = (
        "import sys\nfrom bridging.speech.audio import read_audio\n"
        "from bridging.speech.inference import read_manifest\n"
        "try:\n    read_audio(read_manifest(sys.argv[1])[0].path)\n"
        "except ValueError as e:\n    print(e)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120
    )
    assert res.stdout.splitlines() == [fifo_line(folder / "u0.wav", "audio file")]


# ------------------------------------------------------------------ 8. the vague cases
def test_the_memory_check_takes_the_address_space_limit_into_account(tmp_path, monkeypatch):
    """Under ``ulimit -v`` the room is the limit less the address space already mapped, not
    the machine's free memory; the refusal says which bound it."""
    import resource

    from bridging.runs import memory

    monkeypatch.delenv("BRIDGING_MEMORY_BYTES", raising=False)
    (tmp_path / "meminfo").write_text("MemAvailable: 20000000 kB\n")
    (tmp_path / "status").write_text("Name: python\nVmSize:  3000000 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "meminfo"))
    monkeypatch.setattr(memory, "CGROUP_SELF", str(tmp_path / "none"))
    monkeypatch.setattr(memory, "STATUS", str(tmp_path / "status"))
    limit = 4 * 1024**3
    real = resource.getrlimit
    monkeypatch.setattr(
        resource, "getrlimit", lambda r: (limit, limit) if r == resource.RLIMIT_AS else real(r)
    )
    room = limit - 3000000 * 1024
    assert memory.free_memory("cpu") == (
        room, "free on cpu within the address-space limit (ulimit -v)"
    )  # fmt: skip
    assert memory.available_bytes("cpu") == room
    monkeypatch.setattr(resource, "getrlimit", lambda r: (resource.RLIM_INFINITY,) * 2)
    assert memory.free_memory("cpu") == (20000000 * 1024, "free on cpu")


def test_a_training_under_ulimit_v_is_refused_by_the_memory_check(tmp_path):
    """A real process under an address-space limit: a dialogue that needs more than the
    limit leaves is refused before any work, naming the limit (it read the machine's free
    memory before)."""
    import resource

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 1024**3, 6 * 1024**3))

    env = {k: v for k, v in ENV.items() if k != "BRIDGING_MEMORY_BYTES"}
    long = ["data.synthetic.min_len=3000", "data.synthetic.max_len=3000",
            "data.synthetic.mean_len=3000", "data.synthetic.n_dialogues=4",
            "data.synthetic.n_test_dialogues=1", "model.seqcontext_nlayer=4", "model.wp=-1",
            "model.wf=-1"]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "bridging.cli.train", *TINY, *long, f"hydra.run.dir={tmp_path}/r"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        preexec_fn=limited,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    (line,) = res.stderr.splitlines()
    assert line.startswith("bridging-train: error: synthetic: dialogue ")
    assert "free on cpu within the address-space limit (ulimit -v)" in line
    assert not (tmp_path / "r").exists()


def test_synth_options_a_preset_refuses_are_one_line(tmp_path):
    res = command("data", "synth", tmp_path / "m.pkl", "--preset", "meld", "--mean-len", "4")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "bridging-data: error: --preset meld: preset meld draws dialogue lengths from MELD's "
        "length table: --mean-len does not apply (give --min-len, --max-len or "
        "total_utterances)"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["data", "inspect", "--synthetic"]])
def test_stdout_closed_early_is_one_line_not_a_traceback(argv):
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bridging.cli.{argv[0]}", *argv[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    proc.stdout.close()  # as `| head` does, before the command writes
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert err.splitlines() == [
        "bridging-data: error: stdout: the reader closed the pipe (e.g. | head): the output "
        "is cut short"
    ]


def test_a_report_over_loso_and_paper_runs_says_which_it_left_out(tmp_path, capsys):
    """The claims pair runs of one data set and protocol: the other protocol's runs are
    named in a note, not dropped silently."""
    import test_reproduce_loso as tl
    from bridging.cli.report import main as report_main

    tl.write_loso_comparison(tmp_path / "loso", folds=(1, 2), seeds=(0, 1))
    paper = tmp_path / "paper"
    for m in (tmp_path / "loso").rglob("fold1/seed0/metrics.json"):
        dst = paper / m.parent.parent.parent.name / "seed0"
        dst.mkdir(parents=True)
        obj = json.loads(m.read_text())
        obj["data"] = {k: v for k, v in obj["data"].items() if k not in ("protocol", "fold")}
        (dst / "metrics.json").write_text(json.dumps(obj))
    assert (
        report_main([str(tmp_path), "--bootstrap", "100", "--json", str(tmp_path / "r.json")]) == 0
    )
    out = capsys.readouterr().out
    claims = out.split("## Claims")[1]
    assert (
        "**Not in these claims**: the comparison's runs on synthetic (120 utt), iemocap_4. "
        "Claims pair runs of one data set, label set and protocol (paper or loso)"
    ) in claims
    ctx = json.loads((tmp_path / "r.json").read_text())["claims"]["context"]
    assert ctx["protocol"] == "loso" and ctx["left_out"] == ["synthetic (120 utt), iemocap_4"]
