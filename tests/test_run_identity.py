"""A run's identity (issue 29, items 1-3): a run is bound to its data (content fingerprint),
protocol, fold, dev rule and label set, recorded in its checkpoints and metrics.json; a
resume refuses any change (and a trainer.max_epochs below what it has trained) with one
line; bridging-eval and bridging-predict refuse a split holding dialogues the model was
trained or selected on unless allow_overlap=true, which the output records; a run dir copied
or moved resumes as it would in place; a refused command changes no byte of an existing run
dir; a loso fold of a file missing a session is refused as inspect refuses it."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bridging.data.formats.cogmen import write_cogmen
from bridging.data.synthetic import synthesize
from conftest import TINY
from test_hostile_input import cli, err_lines  # its tests are not collected here
from test_resume import CrashAfter

LOSO1 = ["data.protocol=loso", "data.fold=1"]
#: a run of three epochs that keeps last.ckpt (it can be resumed or extended)
RUN = [*TINY, *LOSO1, "trainer.max_epochs=3", "keep_checkpoints=full"]


def crash_after(steps: int) -> list[str]:
    target = f"{CrashAfter.__module__}.CrashAfter"
    return [f"+callbacks.crash._target_={target}", f"+callbacks.crash.steps={steps}"]


def digests(root: Path) -> dict:
    """Every file and link under ``root`` (hidden ones included): its SHA-256 or target."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", str(p.readlink()))
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[rel] = "dir"
    return out


def corpus(seed: int = 0, drop_session: int | None = None):
    """16 tiny 4-way dialogues over the five sessions (a 6 and v 4 features)."""
    c = synthesize(
        n_dialogues=16,
        n_test_dialogues=4,
        min_len=4,
        max_len=8,
        mean_len=6,
        label_set="iemocap_4",
        feature_sizes={"a": 6, "v": 4},
        seed=seed,
    )
    if drop_session is None:
        return c
    prefix = f"Ses0{drop_session}"
    splits = {n: [d for d in ds if not d.id.startswith(prefix)] for n, ds in c.splits.items()}
    return replace(c, splits=splits)


def train_cli(*args) -> int:
    from bridging.cli.train import main

    return cli(main, *args)


def datamodule(*overrides):
    """The data a tiny run composes with ``overrides``, set up."""
    from hydra.utils import instantiate

    from bridging.runs.config import compose

    cfg = compose("train", [*TINY, *overrides])
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    return dm


def fingerprint(*overrides) -> str:
    """The content fingerprint of the data a tiny run composes with ``overrides``."""
    return datamodule(*overrides).fingerprint


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """A finished loso fold-1 run (csv logger, last.ckpt kept, evaluated into its dir once)
    and a killed one (in its third epoch); tests work on copies."""
    from bridging.cli.eval import main as eval_main

    root = tmp_path_factory.mktemp("identity")
    finished, killed = root / "finished", root / "killed"
    assert train_cli(*RUN, "logger=csv", f"hydra.run.dir={finished}") == 0
    ckpt = finished / "checkpoints" / "best.ckpt"
    assert cli(eval_main, f"ckpt_path={ckpt}", f"hydra.run.dir={finished}") == 0
    assert (finished / ".hydra" / "eval" / "config.yaml").is_file()
    steps = json.loads((finished / "metrics.json").read_text())["data"]["splits"]["train"]
    per_epoch = -(-steps["dialogues"] // 4)  # batch size 4
    code = train_cli(*RUN, *crash_after(2 * per_epoch + 1), f"hydra.run.dir={killed}")
    assert code == 1  # the simulated kill: an internal error
    assert not (killed / "metrics.json").exists()
    return finished, killed


@pytest.fixture
def runs(templates, tmp_path):
    """Copies of the finished and the killed run."""
    out = []
    for src in templates:
        dst = tmp_path / src.name
        shutil.copytree(src, dst, symlinks=True)
        out.append(dst)
    return out


# ----------------------------------------------------------- 1. the binding is recorded
def test_checkpoints_and_metrics_record_the_binding(templates):
    from bridging.data.datamodule import IEMOCAPDataModule

    finished, _ = templates
    metrics = json.loads((finished / "metrics.json").read_text())
    fp = fingerprint(*LOSO1)
    assert metrics["binding"] == {
        "fingerprint": fp,
        "source": "<synthetic>",
        "label_set": "iemocap_4",
        "protocol": "loso",
        "fold": 1,
        "dev_rule": "next_session",
        "normalize": "none",
        "normalize_prior": 1.0,
    }
    assert metrics["data"]["fingerprint"] == fp
    synthetic = {"seed": 0, "n_dialogues": 16, "n_test_dialogues": 4, "min_len": 4}
    synthetic.update(max_len=12, mean_len=8)
    dm = IEMOCAPDataModule(synthetic=synthetic, modalities=["a", "v"], protocol="loso", fold=1)
    dm.setup()
    for name in ("best.ckpt", "last.ckpt"):
        binding = torch.load(finished / "checkpoints" / name, weights_only=True)["bridging"][
            "binding"
        ]
        assert {k: binding[k] for k in metrics["binding"]} == metrics["binding"]
        assert binding["dialogues"] == {s: dm.split(s).ids for s in ("train", "dev")}
        seen = set(binding["dialogues"]["train"]) | set(binding["dialogues"]["dev"])
        assert seen and not seen & set(dm.split("test").ids)


# ------------------------------------------------------ 1. a resume keeps the binding
def resume_refusals(run: Path) -> list[tuple[list[str], str]]:
    here = fingerprint(*LOSO1)[:12]
    other = fingerprint(*LOSO1, "data.synthetic.seed=1")[:12]
    return [
        (
            ["data.fold=3"],
            f"{run}: data.fold: the run was trained with fold 1, this resume asks for 3",
        ),
        (
            ["data.dev=within_train"],
            f"{run}: data.dev: the run was trained with dev rule next_session, this resume "
            "asks for within_train",
        ),
        (
            ["data.protocol=paper", "data.fold=null"],
            f"{run}: data.protocol: the run was trained with protocol loso, this resume asks "
            "for paper",
        ),
        (
            ["data.label_set=iemocap_6"],
            f"{run}: data.label_set: the run was trained with label set iemocap_4, this "
            "resume asks for iemocap_6",
        ),
        (
            ["data.synthetic.seed=1"],
            f"{run}: data.synthetic: the run was trained on <synthetic> with content "
            f"fingerprint {here}, this resume's data (<synthetic>) has {other}: resume on the "
            "data the run was trained on",
        ),
        (
            ["trainer.max_epochs=2"],
            f"{run}: trainer.max_epochs: the run has trained 3 epochs (last.ckpt), this resume "
            "asks for 2: give trainer.max_epochs=3 or more",
        ),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_resume_refuses_another_binding_with_one_line(runs, capsys, case):
    finished, _ = runs
    overrides, line = resume_refusals(finished)[case]
    before = digests(finished)
    code = train_cli(*RUN, "ckpt_path=last", *overrides, f"hydra.run.dir={finished}")
    assert (code, err_lines(capsys)) == (2, [f"bridging-train: error: {line}"])
    assert digests(finished) == before


def test_a_resume_from_a_checkpoint_path_names_it(runs, tmp_path, capsys):
    finished, _ = runs
    ckpt = finished / "checkpoints" / "last.ckpt"
    new = tmp_path / "new"
    code = train_cli(*RUN, "data.fold=2", f"ckpt_path={ckpt}", f"hydra.run.dir={new}")
    assert code == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {ckpt}: data.fold: the run was trained with fold 1, this "
        "resume asks for 2"
    ]
    assert not new.exists()


def test_a_resume_catches_another_file_of_the_same_sizes(tmp_path, capsys):
    a, b = tmp_path / "a.pkl", tmp_path / "b.pkl"
    write_cogmen(corpus(0), a)
    write_cogmen(corpus(1), b)  # the same ids and feature sizes, other numbers
    run = tmp_path / "run"
    data = ["data=iemocap", "data.batch_size=4", *RUN]
    assert train_cli(*data, f"data.path={a}", f"hydra.run.dir={run}") == 0
    capsys.readouterr()
    trained = json.loads((run / "metrics.json").read_text())["binding"]["fingerprint"][:12]
    before = digests(run)
    resume = [*data, "ckpt_path=last", f"hydra.run.dir={run}"]
    assert train_cli(*resume, f"data.path={b}") == 2
    other = fingerprint("data=iemocap", f"data.path={b}", *LOSO1)[:12]
    assert err_lines(capsys) == [
        f"bridging-train: error: {run}: data.path: the run was trained on {a} with content "
        f"fingerprint {trained}, this resume's data ({b}) has {other}: resume on the data the "
        "run was trained on"
    ]
    write_cogmen(corpus(1), a, force=True)  # the same file, changed
    assert train_cli(*resume, f"data.path={a}") == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {run}: data.path: the run was trained on {a} with content "
        f"fingerprint {trained}, this resume's data ({a}) has {other}: resume on the data the "
        "run was trained on"
    ]
    assert digests(run) == before


def test_an_old_checkpoint_without_a_binding_still_resumes(runs, capsys):
    """A checkpoint written before bindings: its facts' protocol and fold are checked, its
    data content cannot be (a warning); the resumed run's checkpoints carry the binding."""
    _, killed = runs
    last = killed / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    del ckpt["bridging"]["binding"]
    torch.save(ckpt, last)
    before = digests(killed)
    resume = [*RUN, "ckpt_path=last", f"hydra.run.dir={killed}"]
    assert train_cli(*resume, "data.fold=3") == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {killed}: data.fold: the run was trained with fold 1, this "
        "resume asks for 3"
    ]
    assert digests(killed) == before
    assert train_cli(*resume) == 0
    warning = "the checkpoint records no data fingerprint"
    assert warning in capsys.readouterr().out
    assert warning in (killed / "train.log").read_text()  # logged before the run's commit
    binding = torch.load(killed / "checkpoints" / "best.ckpt", weights_only=True)["bridging"]
    assert binding["binding"]["fingerprint"] == fingerprint(*LOSO1)


# ------------------------------------------ 1. eval and predict on the model's own dialogues
def test_eval_refuses_a_split_the_model_has_seen(runs, tmp_path, capsys):
    from bridging.cli.eval import main as eval_main

    finished, _ = runs
    ckpt = finished / "checkpoints" / "best.ckpt"
    out = tmp_path / "eval"
    args = [f"ckpt_path={ckpt}", f"hydra.run.dir={out}", "data=tiny"]
    model = "it was trained on loso fold 1 (dev rule next_session) of <synthetic>"
    advice = (
        "evaluate it on its own test split, or give allow_overlap=true to do it anyway "
        "(recorded in the output)"
    )
    cases = [
        (
            ["data.protocol=loso", "data.fold=3"],
            "data.fold=3: the test split holds 3 dialogues the model has seen (3 in its train "
            "split, 0 in its dev split; e.g. Ses03_synth006)",
        ),
        (
            ["data.protocol=loso", "data.fold=2"],
            "data.fold=2: the test split holds 3 dialogues the model has seen (0 in its train "
            "split, 3 in its dev split; e.g. Ses02_synth003)",
        ),
        (
            [],
            "data.protocol=paper: the test split holds 4 dialogues the model has seen (4 in "
            "its train split, 0 in its dev split; e.g. Ses05_synth012)",
        ),
        (
            ["data.protocol=loso", "data.fold=2", "split=dev"],
            "split=dev: the dev split holds 3 dialogues the model has seen (3 in its train "
            "split; e.g. Ses03_synth006)",
        ),
    ]
    for overrides, why in cases:
        assert cli(eval_main, *args, *overrides) == 2
        assert err_lines(capsys) == [f"bridging-eval: error: {ckpt}: {why}: {model}; {advice}"]
        assert not out.exists()
    # its own fold: nothing seen; allow_overlap=true: evaluated, and recorded
    assert cli(eval_main, *args, *LOSO1) == 0
    overlap = json.loads((out / "metrics.json").read_text())["overlap"]
    assert overlap == {
        "allow_overlap": False,
        "seen_by": "recorded",
        "dialogues": 0,
        "train": 0,
        "dev": 0,
    }
    assert cli(eval_main, *args, "data.protocol=loso", "data.fold=3", "allow_overlap=true") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overlap"] == {
        "allow_overlap": True,
        "seen_by": "recorded",
        "dialogues": 3,
        "train": 3,
        "dev": 0,
    }
    assert metrics["data"]["fold"] == 3


def test_predict_refuses_it_and_marks_the_rows_when_allowed(runs, tmp_path, capsys):
    from bridging.cli.predict import main as predict_main

    finished, _ = runs
    ckpt = finished / "checkpoints" / "best.ckpt"
    output = tmp_path / "preds.csv"
    args = [f"ckpt_path={ckpt}", f"output={output}", f"hydra.run.dir={tmp_path}/p", "data=tiny"]
    args += ["data.protocol=loso", "data.fold=2"]
    assert cli(predict_main, *args) == 2
    line = err_lines(capsys)
    assert len(line) == 1 and line[0].startswith(
        f"bridging-predict: error: {ckpt}: data.fold=2: the test split holds 3 dialogues the "
        "model has seen (0 in its train split, 3 in its dev split; e.g. Ses02_synth003)"
    )
    assert not output.exists()
    assert cli(predict_main, *args, "allow_overlap=true") == 0
    rows = list(csv.DictReader(output.open()))
    assert rows and {r["seen_by_model"] for r in rows} == {"dev"}
    # its own fold: no column unless asked for; with it, every row says it was not seen
    assert cli(predict_main, *args[:-1], "data.fold=1", "overwrite=true") == 0
    assert "seen_by_model" not in next(csv.DictReader(output.open()))
    args = [*args[:-1], "data.fold=1", "overwrite=true", "allow_overlap=true"]
    assert cli(predict_main, *args) == 0
    assert {r["seen_by_model"] for r in csv.DictReader(output.open())} == {""}


def test_eval_catches_the_same_dialogues_in_another_file(runs, tmp_path, capsys):
    """The ids recorded in the checkpoint, not the file: the training dialogues written to
    a COGMEN pickle are still the model's."""
    from bridging.cli.eval import main as eval_main
    from bridging.data.datamodule import IEMOCAPDataModule

    finished, _ = runs
    ckpt = finished / "checkpoints" / "best.ckpt"
    hp = torch.load(ckpt, weights_only=True)["hyper_parameters"]["data"]
    dm = IEMOCAPDataModule(synthetic=hp["synthetic"], modalities=["a", "v"])
    dm.setup()
    data = tmp_path / "same.pkl"
    write_cogmen(dm.loaded, data)
    args = [f"ckpt_path={ckpt}", "data=iemocap", f"data.path={data}", *LOSO1]
    assert cli(eval_main, *args, "data.fold=4", f"hydra.run.dir={tmp_path}/e") == 2
    assert err_lines(capsys)[0].startswith(
        f"bridging-eval: error: {ckpt}: data.fold=4: the test split holds 3 dialogues the "
        "model has seen (3 in its train split, 0 in its dev split; e.g. Ses04_synth009)"
    )
    assert cli(eval_main, *args, f"hydra.run.dir={tmp_path}/e") == 0  # its own test split


def test_an_old_checkpoint_s_dialogues_are_derived_from_its_protocol(runs, tmp_path, capsys):
    from bridging.cli.eval import main as eval_main

    finished, _ = runs
    ckpt = tmp_path / "old.ckpt"
    old = torch.load(finished / "checkpoints" / "best.ckpt", weights_only=True)
    del old["bridging"]["binding"]
    torch.save(old, ckpt)
    args = [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path}/e", "data=tiny"]
    assert cli(eval_main, *args, "data.protocol=loso", "data.fold=3") == 2
    assert err_lines(capsys)[0].startswith(
        f"bridging-eval: error: {ckpt}: data.fold=3: the test split holds 3 dialogues the "
        "model has seen (3 in its train split, 0 in its dev split; e.g. Ses03_synth006)"
    )
    assert cli(eval_main, *args, *LOSO1) == 0
    overlap = json.loads((tmp_path / "e" / "metrics.json").read_text())["overlap"]
    assert (overlap["seen_by"], overlap["dialogues"]) == ("derived", 0)


# ----------------------------------------------------- 2. a copied run dir resumes alike
def test_a_copied_run_dir_resumes_as_in_place(compose_cfg, tmp_path):
    """Killed after epoch 3, whose best dev epoch came before: resumed in place and in a
    copy of its dir, the best checkpoint (epoch, weights) and the metrics are the same.
    (Lightning alone drops the best score in the copy: its first resumed epoch became best.)"""
    from bridging.runs.experiment import train

    common = [*TINY, *LOSO1, "trainer.max_epochs=6", "optim.lr=1e-3"]
    killed, copy = tmp_path / "killed", tmp_path / "elsewhere" / "copy"
    per_epoch = -(-len(datamodule(*LOSO1).split("train")) // 4)  # batch size 4
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(compose_cfg([*common, *crash_after(4 * per_epoch + 1)], output_dir=killed))
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 3
    shutil.copytree(killed, copy)
    in_place = train(compose_cfg([*common, "ckpt_path=last"], output_dir=killed))
    copied = train(compose_cfg([*common, "ckpt_path=last"], output_dir=copy))
    # the setting shows the difference: the best epoch is one trained before the kill
    assert in_place["best_epoch"] < 4
    for key in ("best_epoch", "best_checkpoint", "dev", "test", "epochs_run", "binding"):
        assert copied[key] == in_place[key], key
    a = torch.load(killed / "checkpoints" / "best.ckpt", weights_only=True)
    b = torch.load(copy / "checkpoints" / "best.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == in_place["best_epoch"]
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0)


def test_relocation_needs_the_files_at_their_new_place(tmp_path):
    from bridging.runs.train import relocated_state

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    state = {
        "dirpath": str(old),
        "best_model_path": str(old / "best.ckpt"),
        "best_model_score": torch.tensor(0.7),
        "kth_best_model_path": str(old / "best.ckpt"),
        "last_model_path": "",
        "best_k_models": {str(old / "best.ckpt"): torch.tensor(0.7)},
    }
    assert relocated_state(state, str(old), str(new)) is None  # a checkpoint of another dir
    (new / "best.ckpt").write_bytes(b"")
    moved = relocated_state(state, str(old), str(new))
    assert moved["dirpath"] == str(new)
    assert moved["best_model_path"] == moved["kth_best_model_path"] == str(new / "best.ckpt")
    assert moved["last_model_path"] == ""
    assert list(moved["best_k_models"]) == [str(new / "best.ckpt")]
    assert moved["best_model_score"] is state["best_model_score"]


# ------------------------------------------- 3. a refused command changes no byte of a run
def refusals(finished: Path, killed: Path, tmp_path: Path) -> list[tuple]:
    """(command, run dir, arguments, the start of the one error line)."""
    on_finished = [*RUN, f"hydra.run.dir={finished}"]
    on_killed = [*RUN, f"hydra.run.dir={killed}"]
    ckpt = finished / "checkpoints" / "best.ckpt"
    return [
        ("train", finished, on_finished, f"{finished}: holds a finished run"),
        (
            "train",
            finished,
            [*on_finished, "ckpt_path=last", "data.fold=9"],
            "<synthetic>: data.fold=9",
        ),
        (
            "train",
            finished,
            [*on_finished, "ckpt_path=last", "trainer.max_epochs=-1"],
            "trainer.max_epochs=-1",
        ),
        (
            "train",
            finished,
            [*on_finished, "overwrite=true", "data.fold=9"],
            "<synthetic>: data.fold=9",
        ),
        (
            "train",
            finished,
            [*on_finished, "overwrite=true", "data=iemocap", f"data.path={tmp_path}/none.pkl"],
            f"{tmp_path}/none.pkl",
        ),
        (
            "train",
            finished,
            [*on_finished, "ckpt_path=last", "data.fold=2"],
            f"{finished}: data.fold",
        ),
        (
            "train",
            finished,
            [*on_finished, "ckpt_path=last", "model.hidden_size=8"],
            f"{finished}/checkpoints/last.ckpt: does not fit the model",
        ),
        ("train", killed, on_killed, f"{killed}: holds the checkpoints of an unfinished run"),
        (
            "train",
            killed,
            [*on_killed, "ckpt_path=last", "data.fold=9"],
            "<synthetic>: data.fold=9",
        ),
        (
            "train",
            killed,
            [*on_killed, "ckpt_path=last", "trainer.max_epochs=1"],
            f"{killed}: trainer.max_epochs",
        ),
        (
            "eval",
            finished,
            [
                f"ckpt_path={ckpt}",
                f"hydra.run.dir={finished}",
                "data=tiny",
                "data.protocol=loso",
                "data.fold=3",
            ],
            f"{ckpt}: data.fold=3",
        ),
        (
            "eval",
            finished,
            [f"ckpt_path={ckpt}", f"hydra.run.dir={finished}", "split=bogus"],
            "split='bogus'",
        ),
        (
            "predict",
            finished,
            [
                f"ckpt_path={ckpt}",
                f"hydra.run.dir={finished}",
                f"output={finished}/metrics.json",
                "overwrite=true",
            ],
            f"output={finished}/metrics.json",
        ),
    ]


@pytest.mark.parametrize("case", range(13))
def test_a_refused_command_changes_no_byte_of_a_run_dir(runs, tmp_path, capsys, case):
    from bridging.cli.eval import main as eval_main
    from bridging.cli.predict import main as predict_main
    from bridging.cli.train import main as train_main

    finished, killed = runs
    prog, run_dir, args, start = refusals(finished, killed, tmp_path)[case]
    main = {"train": train_main, "eval": eval_main, "predict": predict_main}[prog]
    before = digests(run_dir)
    assert cli(main, *args) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"bridging-{prog}: error: {start}"), lines
    assert digests(run_dir) == before


def test_overwrite_replaces_the_run_once_its_checks_pass(runs, capsys):
    finished, _ = runs
    old = json.loads((finished / "metrics.json").read_text())
    args = [*TINY, *LOSO1, "trainer.max_epochs=1", "overwrite=true", f"hydra.run.dir={finished}"]
    assert train_cli(*args) == 0
    new = json.loads((finished / "metrics.json").read_text())
    assert (old["epochs_run"], new["epochs_run"]) == (3, 1)
    assert sorted(p.name for p in (finished / "checkpoints").iterdir()) == ["best.ckpt"]
    overrides = (finished / ".hydra" / "overrides.yaml").read_text()
    assert "overwrite=true" in overrides and "trainer.max_epochs=1" in overrides


# --------------------------------------------- vague: a loso fold of a file missing a session
def test_a_loso_fold_of_a_file_missing_a_session_is_refused_as_inspect_does(tmp_path, capsys):
    from bridging.cli.data import main as data_main

    data = tmp_path / "no3.pkl"
    write_cogmen(corpus(0, drop_session=3), data)
    why = (
        "session 3 has no dialogue (sessions present: [1, 2, 4, 5]); loso needs all of "
        "Ses01..Ses05 (every fold trains on three of them)"
    )
    run = tmp_path / "run"
    for fold in (1, 2, 4):  # fold 1 would train on two sessions only
        args = [*TINY, "data=iemocap", f"data.path={data}", "data.protocol=loso"]
        assert train_cli(*args, f"data.fold={fold}", f"hydra.run.dir={run}") == 2
        assert err_lines(capsys) == [f"bridging-train: error: {data}: data.fold={fold}: {why}"]
        assert not run.exists()
    assert data_main(["inspect", str(data), "--protocol", "loso"]) == 2
    assert err_lines(capsys) == [f"bridging-data: error: {data}: data.fold=1: {why}"]
