"""Hostile and careless input, round two: config values refused before any work (epochs,
seed, model sizes), training that diverges stops with one line and predictions never hold
NaN, one live run per run dir, no writes through links out of a run dir, outputs that are
their own inputs, special files (FIFOs, devices) refused by every reader, a run dir that
cannot be written, stale checkpoint temporaries, and refused runs that leave nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bridging.data.formats.cogmen import write_cogmen
from test_hostile_input import cli, err_lines, small  # its tests are not collected here

TINY = ["debug=tiny", "logger=none"]


def command(name: str, *args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """``python -m bridging.cli.<name> ARGS`` in a real process (one torch thread)."""
    return subprocess.run(
        [sys.executable, "-m", f"bridging.cli.{name}", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"},
    )


def tree(root: Path) -> dict:
    """Every file under ``root`` and its bytes (links as their target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = ("link", os.readlink(p))
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def tiny_corpus(scale: float = 1.0):
    """16 tiny 4-way dialogues (a 6 and v 4 features), the features times ``scale``."""
    c = small("iemocap_4", n=16, feature_sizes={"a": 6, "v": 4})
    if scale == 1.0:
        return c
    splits = {
        name: [
            replace(d, features={m: (x * scale).astype(np.float32) for m, x in d.features.items()})
            for d in ds
        ]
        for name, ds in c.splits.items()
    }
    return replace(c, splits=splits)


# ------------------------------------------------------- 1, 7. config values refused early
BAD_VALUES = [
    (
        "trainer.max_epochs=-1",
        "trainer.max_epochs=-1: expected a whole number of epochs, at least 1 (Lightning "
        "would train forever)",
    ),
    ("trainer.max_epochs=0", "trainer.max_epochs=0: expected a whole number of epochs, at least 1"),
    (
        "trainer.max_epochs=1.5",
        "trainer.max_epochs=1.5: expected a whole number of epochs, at least 1",
    ),
    (
        "trainer.max_epochs=two",
        "trainer.max_epochs='two': expected a whole number of epochs, at least 1",
    ),
    (
        "seed=99999999999999999999",
        "seed=99999999999999999999: expected a whole number from 0 to 4294967295",
    ),
    ("seed=-1", "seed=-1: expected a whole number from 0 to 4294967295"),
    ("model.hidden_size=0", "model.hidden_size=0: expected a whole number, at least 1"),
    ("model.gnn_nheads=0", "model.gnn_nheads=0: expected a whole number, at least 1"),
]


@pytest.mark.parametrize("override, msg", BAD_VALUES)
def test_bad_config_values_are_refused_and_leave_nothing(tmp_path, capsys, override, msg):
    from bridging.cli.train import main as train_main

    run_dir = tmp_path / "run"
    assert cli(train_main, *TINY, override, f"hydra.run.dir={run_dir}") == 2
    assert err_lines(capsys) == [f"bridging-train: error: {msg}"]
    assert not run_dir.exists()  # no .hydra/, config.yaml, train.log, lock: nothing


def test_a_refused_run_in_an_existing_dir_keeps_only_what_was_there(tmp_path, capsys):
    from bridging.cli.train import main as train_main

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    assert cli(train_main, *TINY, "trainer.max_epochs=-1", f"hydra.run.dir={run_dir}") == 2
    capsys.readouterr()
    names = sorted(p.name for p in run_dir.iterdir())
    assert names in (["notes.txt"], [".bridging.lock", "notes.txt"])
    assert (run_dir / "notes.txt").read_text() == "mine"


def test_a_run_dir_that_cannot_be_created_is_named(tmp_path):
    res = command("train", *TINY, "hydra.run.dir=/sys/bridging_run", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "bridging-train: error: /sys/bridging_run: the run dir is not writable (Operation not "
        "permitted): give a writable hydra.run.dir"
    ]


# ------------------------------------------------ 2. divergence stops; predictions not NaN
def test_features_of_enormous_magnitude_stop_training_with_one_line(tmp_path):
    data = tmp_path / "huge.pkl"
    write_cogmen(tiny_corpus(scale=1e30), data)
    run_dir = tmp_path / "run"
    res = command("train", *TINY, "data=iemocap", f"data.path={data}", f"hydra.run.dir={run_dir}")
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith(
        f"bridging-train: error: {data}: the training loss became nan at epoch 0, batch 0: "
        "features of enormous magnitude (the largest absolute training feature value is "
    )
    assert lines[0].endswith(
        "standardise the features (e.g. z-scores per dimension) and train again"
    )
    assert not (run_dir / "metrics.json").exists()  # nothing that looks finished
    assert not (run_dir / "test_predictions.npz").exists()


def test_non_finite_probabilities_are_never_written():
    from bridging.data.predictions import refuse_non_finite
    from bridging.data.records import DataError

    refuse_non_finite(np.full((3, 4), 0.25, np.float32), "m.ckpt")
    probs = np.full((3, 4), 0.25, np.float32)
    probs[1, 2] = np.nan
    with pytest.raises(DataError) as e:
        refuse_non_finite(probs, "m.ckpt")
    assert str(e.value) == (
        "m.ckpt: the model's class probabilities are not finite (nan or inf) for 1 of 3 "
        "utterances; refusing to write them: features of enormous magnitude (standardise "
        "them), or a model whose training diverged"
    )


# ----------------------------------------------------------- 3. one live run per run dir
def test_a_second_training_into_a_live_run_dir_is_refused(tmp_path, capsys):
    from bridging.cli.train import main as train_main
    from bridging.runs.rundir import LOCK_FILE

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(run_dir / LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for extra in ([], ["ckpt_path=last"], ["overwrite=true"]):
            assert cli(train_main, *TINY, *extra, f"hydra.run.dir={run_dir}") == 2
            assert err_lines(capsys) == [
                f"bridging-train: error: {run_dir}: another training is running in this run "
                f"dir (it holds {LOCK_FILE}); refusing to start a second one: wait for it to "
                "end, or train into another hydra.run.dir"
            ]
            assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # no .hydra/
    finally:
        holder.kill()
        holder.wait()


def test_two_real_trainings_into_one_dir_one_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}"]
    results = [None, None]

    def go(i):
        results[i] = command("train", *args)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results)
    refused = [r for r in results if r.returncode == 2]
    assert codes == [0, 2], [r.stderr[-1000:] for r in results]
    line = refused[0].stderr.splitlines()
    # the loser is refused by the lock, or, when the winner has finished before it looked,
    # by the finished run's metrics.json: either way never two live runs
    assert len(line) == 1 and (
        "another training is running in this run dir" in line[0]
        or "holds a finished run (metrics.json)" in line[0]
    )
    assert json.loads((run_dir / "metrics.json").read_text())["experiment"] == "teacher"


# ------------------------------------------------- 4. never write through a link out of it
@pytest.mark.parametrize("name", ["checkpoints", "metrics.json", "csv"])
def test_overwrite_refuses_a_run_output_linked_out_of_the_run_dir(tmp_path, capsys, name):
    from bridging.cli.train import main as train_main

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.ckpt").write_text("keep")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text("{}") if name != "metrics.json" else None
    target = outside / ("m.json" if name == "metrics.json" else "")
    if name == "metrics.json":
        target.write_text('{"keep": 1}')
    (run_dir / name).symlink_to(target)
    before, before_out = tree(run_dir), tree(outside)
    assert cli(train_main, *TINY, "overwrite=true", f"hydra.run.dir={run_dir}") == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {run_dir / name}: a symbolic link to {target.resolve()}, "
        "outside the run dir; refusing to write through it (remove the link, or train into "
        "another hydra.run.dir)"
    ]
    after = tree(run_dir)
    after.pop(".bridging.lock", None)
    assert after == before and tree(outside) == before_out


def test_a_link_inside_the_run_dir_is_allowed(tmp_path):
    from bridging.runs.rundir import run_dir_problem

    run_dir = tmp_path / "run"
    (run_dir / "real_ckpts").mkdir(parents=True)
    (run_dir / "checkpoints").symlink_to(run_dir / "real_ckpts")
    assert run_dir_problem(run_dir, overwrite=True) is None


# --------------------------------------------- 5. outputs that are their own inputs, --force
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny model trained (one epoch) on a COGMEN file: (checkpoint, data file, root)."""
    from bridging.runs.config import compose
    from bridging.runs.experiment import train

    root = tmp_path_factory.mktemp("round2")
    data = root / "data.pkl"
    write_cogmen(tiny_corpus(), data)
    huge = root / "huge.pkl"
    write_cogmen(tiny_corpus(scale=1e30), huge)
    out = root / "run"
    overrides = [f"paths.output_dir={out}", *TINY, "data=iemocap", f"data.path={data}"]
    train(compose("train", [*overrides, "trainer.max_epochs=1"]))
    return out / "checkpoints" / "best.ckpt", data, root


def test_export_refuses_its_checkpoint_and_existing_outputs(tmp_path, model):
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(model[0].read_bytes())
    link = tmp_path / "link.pt"
    link.symlink_to(ckpt)
    keep = ckpt.read_bytes()
    for out in (ckpt, link, "m.ckpt"):  # the same file, also through a link or relatively
        res = command("export", ckpt, out, "--force", cwd=tmp_path)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f"bridging-export: error: {out}: is the checkpoint {ckpt} itself; refusing to write "
            "over an input, even when forced: give another OUTPUT"
        ]
    assert ckpt.read_bytes() == keep
    for existing in ("model.pt", "model.pt.json"):
        (tmp_path / existing).write_text("mine")
        res = command("export", ckpt, tmp_path / "model.pt")
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f"bridging-export: error: {tmp_path / existing}: exists (a file); refusing to "
            "overwrite it (give --force to replace it)"
        ]
        assert (tmp_path / existing).read_text() == "mine"
        (tmp_path / existing).unlink()


def test_import_cogmen_refuses_its_input_and_an_existing_output(tmp_path):
    src = tmp_path / "ref.pt"
    src.write_bytes(b"reference bytes")
    res = command("import_cogmen", src, "./ref.pt", "--force", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "bridging-import-cogmen: error: ./ref.pt: is the reference checkpoint "
        f"{src} itself; refusing to write over an input, even when forced: give another "
        "OUT.ckpt"
    ]
    out = tmp_path / "out.ckpt"
    out.write_text("mine")
    res = command("import_cogmen", src, out)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"bridging-import-cogmen: error: {out}: exists (a file); refusing to overwrite it "
        "(give --force to replace it)"
    ]
    assert out.read_text() == "mine" and src.read_bytes() == b"reference bytes"


def test_predict_refuses_its_inputs_a_run_file_and_an_existing_output(model, tmp_path, capsys):
    from bridging.cli.predict import main as predict_main

    ckpt, data, root = model
    metrics = root / "run" / "metrics.json"
    before = {p: p.read_bytes() for p in (ckpt, data, metrics)}
    data_args = ["data=iemocap", f"data.path={data}"]
    run_dir = f"hydra.run.dir={tmp_path}/p"
    cases = {
        ckpt: f"output={ckpt}: is the checkpoint {ckpt} itself; refusing to write over an "
        "input, even when forced: give another output",
        data: f"output={data}: is the input data {data} itself; refusing to write over an "
        "input, even when forced: give another output",
        metrics: f"output={metrics}: is a run's metrics.json ({metrics.parent}); refusing to "
        "replace it, even with overwrite=true: give another output",
    }
    for output, msg in cases.items():
        args = [f"ckpt_path={ckpt}", *data_args, f"output={output}", "overwrite=true", run_dir]
        assert cli(predict_main, *args) == 2
        assert err_lines(capsys) == [f"bridging-predict: error: {msg}"]
    assert {p: p.read_bytes() for p in before} == before
    preds = tmp_path / "preds.csv"
    preds.write_text("mine")
    args = [f"ckpt_path={ckpt}", *data_args, f"output={preds}", run_dir]
    assert cli(predict_main, *args) == 2
    assert err_lines(capsys) == [
        f"bridging-predict: error: output={preds}: exists; refusing to overwrite it "
        "(overwrite=true replaces it)"
    ]
    assert preds.read_text() == "mine"
    assert cli(predict_main, *args, "overwrite=true") == 0
    assert preds.read_text().startswith("dialogue_id,utterance_index,speaker,gold,pred,prob_")


def test_predict_never_writes_nan_probabilities(model, tmp_path, capsys):
    from bridging.cli.predict import main as predict_main

    ckpt, _, root = model
    preds = tmp_path / "preds.csv"
    args = [f"ckpt_path={ckpt}", "data=iemocap", f"data.path={root / 'huge.pkl'}"]
    assert cli(predict_main, *args, f"output={preds}", f"hydra.run.dir={tmp_path}/p") == 2
    (line,) = err_lines(capsys)
    assert line.startswith(
        f"bridging-predict: error: {ckpt}: the model's class probabilities are not finite "
        "(nan or inf) for "
    )
    assert line.endswith(
        "utterances; refusing to write them: features of enormous magnitude (standardise "
        "them), or a model whose training diverged"
    )
    assert not preds.exists()


def test_convert_refuses_its_input_and_a_forced_non_corpus(tmp_path, capsys):
    from bridging.cli.data import main as data_main

    pkl = tmp_path / "data.pkl"
    write_cogmen(tiny_corpus(), pkl)
    keep = pkl.read_bytes()
    link = tmp_path / "same.pkl"
    link.symlink_to(pkl)
    for out in (pkl, link):
        assert data_main(["convert", str(pkl), str(out), "--force"]) == 2
        assert err_lines(capsys) == [
            f"bridging-data: error: {out}: is the input {pkl} itself; refusing to write over "
            "an input, even when forced: give another OUT"
        ]
    assert pkl.read_bytes() == keep
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine")
    for out in (notes, tmp_path / "notes.txt"):
        if out.suffix:
            out.write_text("mine")
        assert data_main(["convert", str(pkl), str(out), "--force"]) == 2
        (line,) = err_lines(capsys)
        assert line.startswith(f"bridging-data: error: {out}: exists and is not a bridging")
    assert (notes / "a.txt").read_text() == "mine"
    assert (tmp_path / "notes.txt").read_text() == "mine"
    native = tmp_path / "native"
    assert data_main(["convert", str(pkl), str(native)]) == 0
    assert data_main(["convert", str(pkl), str(native), "--force"]) == 0  # a corpus: replaced


# ------------------------------------------------- 6. FIFOs and devices refused by readers
def test_special_files_are_refused_by_every_reader(tmp_path, capsys):
    from bridging.cli.data import main as data_main
    from bridging.cli.eval import main as eval_main

    fifo = tmp_path / "fifo.pkl"
    os.mkfifo(fifo)

    def refused(path, kind, what):
        return f"{path}: is {kind}, not a regular file or a directory; expected a {what}"

    for path, kind in ((fifo, "a FIFO (named pipe)"), ("/dev/zero", "a character device")):
        assert data_main(["inspect", str(path)]) == 2  # never hangs
        assert err_lines(capsys) == [
            f"bridging-data: error: {refused(path, kind, 'data file or folder')}"
        ]
        assert data_main(["convert", str(path), str(tmp_path / "out")]) == 2
        assert err_lines(capsys) == [
            f"bridging-data: error: {refused(path, kind, 'data file or folder')}"
        ]
        assert cli(eval_main, f"ckpt_path={path}", f"hydra.run.dir={tmp_path}/e") == 2
        assert err_lines(capsys) == [
            f"bridging-eval: error: {refused(path, kind, 'checkpoint file')}"
        ]
    res = command("import_cogmen", fifo, tmp_path / "x.ckpt", timeout=120)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"bridging-import-cogmen: error: {refused(fifo, 'a FIFO (named pipe)', 'checkpoint file')}"
    ]
    res = command(
        "train", *TINY, "data=iemocap", f"data.path={fifo}", f"hydra.run.dir={tmp_path}/t"
    )
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"bridging-train: error: {refused(fifo, 'a FIFO (named pipe)', 'data file or folder')}"
    ]


# --------------------------------------------------- 7. stale checkpoint temporaries go
def test_stale_checkpoint_temporaries_are_removed_on_resume(tmp_path):
    from bridging.runs.rundir import remove_stale_temporaries, run_dir_lock

    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    stale = ckpts / ".best.ckpt.4242.0123abcd.tmp"
    stale.write_bytes(b"")
    mine = [ckpts / "best.ckpt", ckpts / "notes.tmp", ckpts / ".best.ckpt.12.xyz.tmp"]
    for p in mine:
        p.write_text("keep")
    assert remove_stale_temporaries(tmp_path / "run") == []  # not without the lock
    with run_dir_lock(tmp_path / "run"):
        assert remove_stale_temporaries(tmp_path / "run") == [stale]
    assert not stale.exists() and all(p.read_text() == "keep" for p in mine)


def test_a_value_holding_an_equals_sign_says_how_to_quote_it(tmp_path):
    res = command(
        "train", *TINY, "data=iemocap", "data.path=/x/a=b.pkl", f"hydra.run.dir={tmp_path}/r"
    )
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "bridging-train: error: data.path=/x/a=b.pkl: not a valid override (mismatched input "
        "'=' expecting <EOF>): quote a value holding '=' or another of Hydra's special "
        "characters, e.g. data.path=\"'/x/a=b.pkl'\""
    ]
    # quoted as it says, the path gets through Hydra (and is then looked for)
    res = command(
        "train", *TINY, "data=iemocap", "data.path='/x/a=b.pkl'", f"hydra.run.dir={tmp_path}/r"
    )
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["bridging-train: error: /x/a=b.pkl: no such file"]
    assert not (tmp_path / "r").exists()  # refused: no .hydra/, config.yaml, train.log


def test_resume_removes_a_stale_checkpoint_temporary(model, tmp_path):
    """A kill -9 during a checkpoint write leaves ``.last.ckpt.<pid>.<hex>.tmp``: the resumed
    run removes it (and only it)."""
    from bridging.runs.config import compose
    from bridging.runs.experiment import train

    _, data, _ = model
    run_dir = tmp_path / "run"
    overrides = [*TINY, "data=iemocap", f"data.path={data}", "keep_checkpoints=full"]
    train(compose("train", [f"paths.output_dir={run_dir}", *overrides, "trainer.max_epochs=1"]))
    (run_dir / "metrics.json").unlink()  # as if killed after its first epoch
    stale = run_dir / "checkpoints" / ".last.ckpt.999999.0badc0de.tmp"
    stale.write_bytes(b"")
    res = command(
        "train", *overrides, "trainer.max_epochs=2", "ckpt_path=last", f"hydra.run.dir={run_dir}"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert not stale.exists()
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2


# ------------------------------------------------------------------------------ eval leftovers
@pytest.mark.parametrize("prog", ["eval", "predict"])
def test_a_failed_eval_or_predict_leaves_nothing_it_made(tmp_path, monkeypatch, capsys, prog):
    """A failed bridging-eval / -predict removes the dir Hydra made for it (and its new
    parents), never a parent that existed or anything in a given run dir but its own log and
    record."""
    from bridging.cli.eval import main as eval_main
    from bridging.cli.predict import main as predict_main
    from test_hostile_input import cli as run_cli

    main = eval_main if prog == "eval" else predict_main
    extra = [] if prog == "eval" else [f"output={tmp_path / 'p.csv'}"]
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "missing.ckpt"
    assert run_cli(main, f"ckpt_path={missing}", *extra) == 2
    assert f"{missing}: no such checkpoint file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # outputs/<prog>/runs/<ts> gone
    keep = tmp_path / "outputs" / prog / "runs" / "keep"
    keep.mkdir(parents=True)
    assert run_cli(main, f"ckpt_path={missing}", *extra) == 2
    assert sorted(p.name for p in keep.parent.iterdir()) == ["keep"]  # a used parent stays
    given = tmp_path / "a_run"
    (given / ".hydra").mkdir(parents=True)
    (given / "train.log").write_text("the run's own log\n")
    (given / ".hydra" / "config.yaml").write_text("x: 1\n")
    before = tree(given)
    assert run_cli(main, f"ckpt_path={missing}", f"hydra.run.dir={given}", *extra) == 2
    assert tree(given) == before  # no <prog>.log, no .hydra/<prog>/ left in the given dir
    assert not (tmp_path / "p.csv").exists()
