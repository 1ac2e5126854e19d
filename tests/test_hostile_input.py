"""Hostile and careless input (issue 12): leakage refused by every reader, data checked against
the checkpoint at evaluation and resume, finished and killed runs never replaced, eval
outputs beside a run's files, data writers that refuse existing targets, the umask's file
modes, silent recordings flagged, every bridging-train/-eval/-predict error on one line,
quiet runs."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bridging.data.formats.cogmen import read_cogmen, write_cogmen
from bridging.data.formats.dialoguernn import read_dialoguernn, write_dialoguernn
from bridging.data.formats.native import read_native, write_native
from bridging.data.records import DataError
from bridging.data.synthetic import synthesize
from bridging.data.validate import validate_corpus
from bridging.utils.files import OutputError

BIN = Path(sys.executable).parent
TINY = ["debug=tiny", "logger=none"]
SIZES = {"a": 6, "t": 10, "v": 8}


def small(label_set="iemocap_6", n=24, **kw):
    kw.setdefault("feature_sizes", SIZES)
    return synthesize(
        n_dialogues=n,
        n_test_dialogues=4,
        min_len=4,
        max_len=8,
        mean_len=6,
        label_set=label_set,
        seed=0,
        **kw,
    )


def moved(corpus, src: str, index: int, dst: str):
    """``corpus`` with dialogue ``index`` of split ``src`` also in split ``dst`` (a copy)."""
    splits = {k: list(v) for k, v in corpus.splits.items()}
    splits[dst].append(splits[src][index])
    return replace(corpus, splits=splits)


def run(*args, env=None, timeout=600, umask=None):
    return subprocess.run(
        [str(BIN / args[0]), *map(str, args[1:])],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", **(env or {})},
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def cli(main, *argv) -> int:
    """A Hydra command in this process, as its console entry point runs it; its exit code."""
    old = sys.argv
    sys.argv = [main.__name__, *map(str, argv)]
    try:
        main()
        return 0
    except SystemExit as exc:
        return exc.code
    finally:
        sys.argv = old


def err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


# ------------------------------------------------------------------------------ 1. leakage
LEAKS = [
    ("train", 0, "test", "split 'train' and in split 'test'"),
    ("dev", 0, "test", "split 'dev' and in split 'test'"),
    ("train", 1, "dev", "split 'train' and in split 'dev'"),
]


@pytest.mark.parametrize("src, index, dst, where", LEAKS)
def test_validate_corpus_refuses_a_dialogue_in_two_splits(src, index, dst, where):
    c = small()
    leaked = moved(c, src, index, dst)
    vid = c.splits[src][index].id
    with pytest.raises(DataError) as e:
        validate_corpus(leaked)
    assert str(e.value) == (
        f"<synthetic>: dialogue id {vid!r} is in {where}: a dialogue must be in one split "
        "only (leakage)"
    )


def test_validate_corpus_refuses_a_dialogue_twice_in_a_split():
    c = small()
    n = len(c.splits["train"])
    twice = moved(c, "train", 2, "train")
    with pytest.raises(DataError) as e:
        validate_corpus(twice)
    assert str(e.value) == (
        f"<synthetic>: dialogue id {c.splits['train'][2].id!r} appears twice in split 'train' "
        f"(items 2 and {n}): each dialogue must be listed once"
    )


@pytest.mark.parametrize("layout", ["cogmen", "native", "native.safetensors"])
@pytest.mark.parametrize("src, index, dst, where", LEAKS)
def test_cogmen_and_native_readers_refuse_leakage(tmp_path, layout, src, index, dst, where):
    c = small()
    vid = c.splits[src][index].id
    path = tmp_path / ("data.pkl" if layout == "cogmen" else layout)
    if layout == "cogmen":
        write_cogmen(moved(c, src, index, dst), path)
        read = read_cogmen
    else:
        write_native(moved(c, src, index, dst), path)
        read = read_native
    with pytest.raises(DataError) as e:
        read(path, label_set="iemocap_6")
    assert str(e.value) == (
        f"{path}: dialogue id {vid!r} is in {where}: a dialogue must be in one split only (leakage)"
    )


def test_dialoguernn_reader_refuses_leakage_naming_the_stored_lists(tmp_path):
    c = small()
    path = tmp_path / "IEMOCAP_features.pkl"
    write_dialoguernn(c, path)
    with open(path, "rb") as fh:
        fields = list(pickle.load(fh))
    train_ids = list(fields[7])
    fields[8] = [*fields[8], train_ids[-1]]  # a training dialogue also listed in testVid
    leak = tmp_path / "leak.pkl"
    leak.write_bytes(pickle.dumps(tuple(fields), protocol=2))
    with pytest.raises(DataError) as e:
        read_dialoguernn(leak, label_set="iemocap_6")
    assert str(e.value) == (
        f"{leak}: dialogue id {train_ids[-1]!r} is in split 'train' (trainVid) and in split "
        "'test' (testVid): a dialogue must be in one split only (leakage)"
    )
    fields[8] = fields[8][:-1]
    fields[7] = [*train_ids, train_ids[3]]  # listed twice in trainVid
    twice = tmp_path / "twice.pkl"
    twice.write_bytes(pickle.dumps(tuple(fields), protocol=2))
    n_dev = int(0.1 * len(fields[7]))
    with pytest.raises(DataError) as e:
        read_dialoguernn(twice, label_set="iemocap_6")
    assert str(e.value) == (
        f"{twice}: dialogue id {train_ids[3]!r} appears twice in split 'train' (trainVid) "
        f"(items {3 - n_dev} and {len(train_ids) - n_dev}): each dialogue must be listed once"
    )


def test_the_synthetic_generator_never_repeats_ids():
    c = synthesize(n_dialogues=151, seed=3, label_set="iemocap_4", feature_sizes=SIZES)
    ids = [d.id for ds in c.splits.values() for d in ds]
    assert len(ids) == len(set(ids)) == 151
    validate_corpus(c)


# ------------------------------------------------------------ a finished tiny training run
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """bridging-train as a user runs it (umask 022, full checkpoints kept): its run dir and
    the process's output."""
    out = tmp_path_factory.mktemp("hostile") / "run"
    res = run(
        "bridging-train",
        *TINY,
        "trainer.max_epochs=1",
        "keep_checkpoints=full",
        f"hydra.run.dir={out}",
        umask=0o022,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res


def data_cfg(path, label_set="iemocap_4") -> dict:
    return {
        "_target_": "bridging.data.datamodule.IEMOCAPDataModule",
        "path": str(path),
        "label_set": label_set,
        "batch_size": 4,
    }


def tiny_corpus(label_set="iemocap_4", sizes=None):
    return synthesize(
        n_dialogues=16,
        n_test_dialogues=4,
        min_len=4,
        max_len=12,
        mean_len=8,
        label_set=label_set,
        seed=0,
        feature_sizes=sizes or {"a": 100, "t": 768, "v": 512},
    )


def compose(overrides):
    from bridging.runs.config import compose as _compose

    return _compose("train", overrides)


# ------------------------------------------------------------------------------- 10. noise
def test_a_training_run_prints_the_headline_and_no_lightning_info(trained):
    _, res = trained
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "[teacher] teacher trained on a+v, evaluated on a+v (iemocap_4): test weighted F1 "
    )
    assert "litlogger" not in res.stdout + res.stderr
    assert "[INFO]" not in res.stdout + res.stderr
    assert res.stderr == ""


# -------------------------------------------------------------------------- 6. file modes
def test_run_outputs_get_the_umask_mode(trained):
    out, _ = trained
    for name in (
        "metrics.json",
        "config.yaml",
        "confusion_matrix.png",
        "test_predictions.npz",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_data_eval_and_prediction_files_get_the_umask_mode(trained, tmp_path):
    from bridging.cli.data import main as data_main
    from bridging.runs.evaluate import evaluate, predict

    out, _ = trained
    old = os.umask(0o022)
    try:
        for layout, name in [
            ("cogmen", "c.pkl"),
            ("native", "corpus"),
            ("native", "corpus.safetensors"),
        ]:
            assert (
                data_main(
                    [
                        "synth",
                        str(tmp_path / name),
                        "--layout",
                        layout,
                        "--n-dialogues",
                        "16",
                        "--sizes",
                        "a=4,v=4",
                    ]
                )
                == 0
            )
        assert (
            data_main(
                [
                    "synth",
                    str(tmp_path / "d.pkl"),
                    "--layout",
                    "dialoguernn",
                    "--label-set",
                    "iemocap_6",
                    "--n-dialogues",
                    "16",
                    "--sizes",
                    "a=4,v=4",
                ]
            )
            == 0
        )
        ckpt = out / "checkpoints" / "best.ckpt"
        evaluate(ckpt, output_dir=tmp_path / "eval")
        predict(ckpt, tmp_path / "preds.csv", split="dev")
    finally:
        os.umask(old)
    for name in (
        "c.pkl",
        "d.pkl",
        "corpus.safetensors",
        "corpus/meta.json",
        "corpus/train.safetensors",
        "eval/metrics.json",
        "eval/confusion_matrix.png",
        "eval/test_predictions.npz",
        "preds.csv",
    ):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((tmp_path / "corpus").stat().st_mode) == 0o755


# ----------------------------------------------- 2. the data must fit the checkpoint's facts
@pytest.fixture(scope="module")
def odd_data(tmp_path_factory):
    """COGMEN files: a 10/10-style split of the same total (a 110 + v 502 vs the model's
    100 + 512), a different total (a 110 + v 512), and 6-way labels."""
    root = tmp_path_factory.mktemp("odd")
    files = {
        "same_total": tiny_corpus(sizes={"a": 110, "v": 502}),
        "other_total": tiny_corpus(sizes={"a": 110, "v": 512}),
        "six_way": tiny_corpus("iemocap_6", sizes={"a": 100, "v": 512}),
        "fits": tiny_corpus(sizes={"a": 100, "v": 512}),
    }
    for name, corpus in files.items():
        write_cogmen(corpus, root / f"{name}.pkl")
    return root


@pytest.mark.parametrize("name", ["same_total", "other_total"])
def test_eval_and_predict_check_every_modality_size(trained, odd_data, tmp_path, name):
    from bridging.runs.evaluate import evaluate, predict

    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    path = odd_data / f"{name}.pkl"
    v = 502 if name == "same_total" else 512
    want = (
        f"{ckpt}: modality 'a' has 110 features per utterance in the data {path} but the model "
        f"was trained with 100 (checkpoint facts.feature_sizes {{'a': 100, 'v': 512}}, data "
        f"{{'a': 110, 'v': {v}}})"
    )
    with pytest.raises(DataError) as e:
        evaluate(ckpt, data_cfg=data_cfg(path), output_dir=tmp_path / "eval")
    assert str(e.value) == want
    assert not (tmp_path / "eval").exists()  # nothing written as if valid
    with pytest.raises(DataError) as e:
        predict(ckpt, tmp_path / "p.csv", data_cfg=data_cfg(path))
    assert str(e.value) == want
    # the speech-only evaluation zeroes video: only audio's size matters then
    with pytest.raises(DataError, match="modality 'a' has 110 features"):
        evaluate(ckpt, data_cfg=data_cfg(path), modalities=["a"])


def test_a_four_way_model_on_six_way_data_is_refused_by_name(trained, odd_data):
    from bridging.runs.evaluate import evaluate

    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    path = odd_data / "six_way.pkl"
    with pytest.raises(DataError) as e:
        evaluate(ckpt, data_cfg=data_cfg(path, "iemocap_6"))
    assert str(e.value) == (
        f"{ckpt}: the model was trained on iemocap_4 (4 classes: hap, sad, neu, ang) but the "
        f"data {path} is iemocap_6 (6 classes: hap, sad, neu, ang, exc, fru): give "
        "data.label_set=iemocap_4"
    )


def _ckpt_variant(src, dst, edit):
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, dst)
    return dst


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo ran > /dev/null",))


@pytest.fixture(scope="module")
def bad_ckpts(trained, tmp_path_factory):
    """Checkpoints a careless or hostile user may give: one that runs code when unpickled,
    a foreign one, one without hyper_parameters, one with a tensor of another shape."""
    root = tmp_path_factory.mktemp("bad")
    last = trained[0] / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": RunsCode()}, root / "evil.ckpt")
    torch.save({"state_dict": {}, "epoch": 1}, root / "foreign.ckpt")
    _ckpt_variant(last, root / "nohp.ckpt", lambda c: c.pop("hyper_parameters"))
    key = "model.clf.lin1.weight"

    def reshape(c):
        assert key in c["state_dict"], sorted(c["state_dict"])[:40]
        w = c["state_dict"][key]
        c["state_dict"][key] = torch.zeros(w.shape[0], w.shape[1] + 2)

    _ckpt_variant(last, root / "shape.ckpt", reshape)
    return root, key


def bad_messages(root, key, shape_of) -> dict:
    return {
        "evil": (
            f"{root / 'evil.ckpt'}: not a bridging checkpoint: refused without running "
            "anything of it: loading it would call posix.system, which no bridging checkpoint "
            "needs (a file that runs code when loaded, or one saved by another program)"
        ),
        "foreign": (
            f"{root / 'foreign.ckpt'}: not a bridging checkpoint (expected keys 'bridging', "
            "'state_dict' and 'hyper_parameters'; found ['epoch', 'state_dict'])"
        ),
        "nohp": (
            f"{root / 'nohp.ckpt'}: a bridging checkpoint without 'hyper_parameters' (found "
            "none): the model cannot be rebuilt"
        ),
        "shape": shape_of(root / "shape.ckpt", key),
    }


@pytest.mark.parametrize("name", ["evil", "foreign", "nohp", "shape"])
def test_resume_from_a_bad_checkpoint_names_the_file_and_field(bad_ckpts, tmp_path, name):
    from bridging.runs.experiment import train

    root, key = bad_ckpts

    def shape_of(path, key):
        w = torch.load(root / "shape.ckpt", weights_only=True)["state_dict"][key]
        return (
            f"{path}: does not fit the model this run's config builds: tensor {key!r} has "
            f"shape {list(w.shape)} in the checkpoint, {[w.shape[0], w.shape[1] - 2]} in the "
            "model"
        )

    cfg = compose([f"paths.output_dir={tmp_path}", *TINY, f"ckpt_path={root / name}.ckpt"])
    with pytest.raises(DataError) as e:
        train(cfg)
    assert str(e.value) == bad_messages(root, key, shape_of)[name]
    assert not (tmp_path / "checkpoints").exists()


def test_resume_checks_sizes_modalities_and_the_training_state(trained, tmp_path):
    from bridging.runs.experiment import train

    out = trained[0]
    last, best = out / "checkpoints" / "last.ckpt", out / "checkpoints" / "best.ckpt"
    sizes = "+data.synthetic.feature_sizes={a:110,t:768,v:502}"
    with pytest.raises(DataError) as e:
        train(compose([f"paths.output_dir={tmp_path}/a", *TINY, sizes, f"ckpt_path={last}"]))
    assert str(e.value) == (
        f"{last}: modality 'a' has 110 features per utterance in the data <synthetic> but the "
        "model was trained with 100 (checkpoint facts.feature_sizes {'a': 100, 'v': 512}, "
        "data {'a': 110, 'v': 502})"
    )
    with pytest.raises(DataError) as e:
        train(
            compose(
                [
                    f"paths.output_dir={tmp_path}/b",
                    *TINY,
                    "modalities=[a]",
                    f"ckpt_path={last}",
                ]
            )
        )
    assert str(e.value) == (
        f"{last}: the checkpoint's model takes modalities ['a', 'v'], this run's ['a'] "
        "(modalities=...)"
    )
    with pytest.raises(DataError) as e:
        train(compose([f"paths.output_dir={tmp_path}/c", *TINY, f"ckpt_path={best}"]))
    assert str(e.value) == (
        f"{best}: a weights-only checkpoint (no optimizer_states): it cannot resume training; "
        "resume from the run's full checkpoints/last.ckpt (ckpt_path=last)"
    )


@pytest.mark.parametrize("name", ["evil", "foreign", "nohp", "shape"])
def test_eval_of_a_bad_checkpoint_is_one_line(bad_ckpts, tmp_path, capsys, name):
    from bridging.cli.eval import main as eval_main

    root, key = bad_ckpts

    def shape_of(path, key):
        w = torch.load(path, weights_only=True)["state_dict"][key]
        return (
            f"{path}: state_dict does not fit its hyper_parameters: tensor {key!r} has shape "
            f"{list(w.shape)} in the checkpoint, {[w.shape[0], w.shape[1] - 2]} in the model"
        )

    code = cli(eval_main, f"ckpt_path={root / name}.ckpt", f"hydra.run.dir={tmp_path}")
    assert code == 2
    assert err_lines(capsys) == [f"bridging-eval: error: {bad_messages(root, key, shape_of)[name]}"]


# ------------------------------------------------- 3. finished and killed runs are kept
def _snapshot(run_dir: Path) -> dict:
    files = [
        "metrics.json",
        "config.yaml",
        "test_predictions.npz",
        "confusion_matrix.png",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "checkpoints/best.ckpt",
    ]
    return {f: (run_dir / f).read_bytes() for f in files if (run_dir / f).exists()}


def test_training_into_a_finished_run_is_refused(trained, capsys):
    from bridging.cli.train import main as train_main

    out = trained[0]
    before = _snapshot(out)
    assert cli(train_main, *TINY, f"hydra.run.dir={out}") == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {out}: holds a finished run (metrics.json); refusing to "
        "replace it: ckpt_path=last resumes or extends it, overwrite=true replaces it "
        "deliberately, or train into another hydra.run.dir"
    ]
    assert _snapshot(out) == before  # its .hydra/ record included


def test_a_killed_run_without_ckpt_path_last_is_refused(trained, tmp_path, capsys):
    from bridging.cli.train import main as train_main

    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    for name in ("best.ckpt", "last.ckpt"):
        (killed / "checkpoints" / name).write_bytes(
            (trained[0] / "checkpoints" / name).read_bytes()
        )
    assert cli(train_main, *TINY, f"hydra.run.dir={killed}") == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {killed}: holds the checkpoints of an unfinished run "
        "(best.ckpt, last.ckpt) and no metrics.json; refusing to throw them away: "
        "ckpt_path=last resumes it, overwrite=true starts it again deliberately"
    ]
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (killed / ".hydra").exists()


def test_overwrite_replaces_a_run_deliberately_and_fresh_dirs_pass(trained, tmp_path, capsys):
    from bridging.cli.train import main as train_main
    from bridging.runs.rundir import check_run_dir

    old = tmp_path / "old"
    for f, data in _snapshot(trained[0]).items():
        (old / f).parent.mkdir(parents=True, exist_ok=True)
        (old / f).write_bytes(data)
    (old / "metrics.json").write_text('{"experiment": "old"}')
    check_run_dir(tmp_path / "fresh")  # no such dir yet
    check_run_dir(old, ckpt_path="last")  # a resume
    check_run_dir(old, ckpt_path=str(old / "checkpoints" / "best.ckpt"))  # its own checkpoint
    assert (
        cli(train_main, *TINY, "trainer.max_epochs=1", "overwrite=true", f"hydra.run.dir={old}")
        == 0
    )
    assert json.loads((old / "metrics.json").read_text())["experiment"] == "teacher"
    assert sorted(p.name for p in (old / "checkpoints").iterdir()) == ["best.ckpt"]
    capsys.readouterr()
    # a multirun's job dirs are fresh: unaffected
    sweep = tmp_path / "sweep"
    assert (
        cli(train_main, "-m", *TINY, "trainer.max_epochs=1", "seed=1,2", f"hydra.sweep.dir={sweep}")
        == 0
    )
    assert [json.loads((sweep / j / "metrics.json").read_text())["seed"] for j in "01"] == [1, 2]


# ----------------------------------------- 4. eval never replaces a training run's files
def test_eval_into_a_training_run_dir_writes_its_own_subdir(trained, capsys):
    from bridging.cli.eval import main as eval_main
    from bridging.report import load_runs

    out = trained[0]
    before = _snapshot(out)
    ckpt = out / "checkpoints" / "best.ckpt"
    assert cli(eval_main, f"ckpt_path={ckpt}", "eval.modalities=[a]", f"hydra.run.dir={out}") == 0
    stdout = capsys.readouterr().out
    assert stdout.splitlines()[-1].endswith(f"-> {out}/eval_test_a/metrics.json")
    assert _snapshot(out) == before
    sub = out / "eval_test_a"
    assert sorted(p.name for p in sub.iterdir()) == [
        "confusion_matrix.png",
        "metrics.json",
        "test_predictions.npz",
    ]
    assert json.loads((sub / "metrics.json").read_text())["checkpoint"] == str(ckpt)
    assert (out / ".hydra" / "eval" / "config.yaml").is_file()
    # the report reads both: the run, and its evaluation as "<experiment>/eval"
    runs = {r.experiment: r for r in load_runs([out])}
    assert set(runs) == {"teacher", "teacher/eval"}
    assert runs["teacher/eval"].eval_modalities == ("a",)
    assert runs["teacher/eval"].run_dir == sub


# ---------------------------------------------- 5. data writers refuse existing targets
def test_synth_and_convert_refuse_existing_targets_unless_forced(tmp_path, capsys):
    from bridging.cli.data import main as data_main

    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    tiny = ["--n-dialogues", "16", "--sizes", "a=4,v=4"]
    for layout in ("cogmen", "native"):
        assert data_main(["synth", str(notes), "--layout", layout, *tiny]) == 2
        assert err_lines(capsys) == [
            f"bridging-data: error: {notes}: exists (a file); refusing to overwrite it "
            "(give --force to replace it)"
        ]
        assert notes.read_text() == "keep me"
    pkl = tmp_path / "data.pkl"
    assert data_main(["synth", str(pkl), "--layout", "cogmen", *tiny]) == 0
    native = tmp_path / "native"
    assert data_main(["convert", str(pkl), str(native)]) == 0
    capsys.readouterr()
    assert data_main(["convert", str(pkl), str(native)]) == 2
    assert err_lines(capsys) == [
        f"bridging-data: error: {native}: exists (a folder); refusing to overwrite it "
        "(give --force to replace it)"
    ]
    assert data_main(["convert", str(pkl), str(native), "--force"]) == 0
    again = ["synth", str(pkl), "--layout", "cogmen", "--seed", "3", "--force", *tiny]
    assert data_main(again) == 0
    capsys.readouterr()
    # --force replaces a bridging corpus only (round two): a file that is not one is kept
    assert data_main(["convert", str(pkl), str(notes), "--force"]) == 2
    assert err_lines(capsys) == [
        f"bridging-data: error: {notes}: exists and is not a bridging corpus; refusing to "
        "replace it, even with --force (which replaces a bridging corpus only): remove it or "
        "give another OUT"
    ]
    assert notes.read_text() == "keep me"


@pytest.mark.parametrize("writer", [write_cogmen, write_dialoguernn, write_native])
def test_writers_refuse_any_existing_file(tmp_path, writer):
    c = small()
    target = tmp_path / ("x.safetensors" if writer is write_native else "x.pkl")
    target.write_text("not data")
    with pytest.raises(OutputError) as e:
        writer(c, target)
    assert str(e.value) == (
        f"{target}: exists (a file); refusing to overwrite it (force=True replaces it)"
    )
    assert target.read_text() == "not data"
    writer(c, target, force=True)
    assert target.stat().st_size > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left


# ------------------------------------------------------------ 9. errors a person can read
def test_hydra_composition_and_config_errors_are_one_line(trained, tmp_path, capsys):
    from bridging.cli.eval import main as eval_main
    from bridging.cli.predict import main as predict_main
    from bridging.cli.train import main as train_main

    assert cli(train_main, *TINY, "foo=1") == 2
    assert err_lines(capsys) == [
        "bridging-train: error: Could not override 'foo': Key 'foo' is not in struct",
        "To append to your config use +foo=1",
    ]
    assert cli(train_main, *TINY, "keep_checkpoints=some", f"hydra.run.dir={tmp_path}/k") == 2
    assert err_lines(capsys) == [
        "bridging-train: error: keep_checkpoints='some': expected one of ('best_weights', 'full')"
    ]
    assert cli(train_main, *TINY, "allocator=bogus", f"hydra.run.dir={tmp_path}/a") == 2
    assert err_lines(capsys) == [
        "bridging-train: error: allocator='bogus': expected one of ('tuned', 'system')"
    ]
    assert cli(eval_main, f"hydra.run.dir={tmp_path}/e") == 2
    assert err_lines(capsys) == ["bridging-eval: error: Missing mandatory value: ckpt_path"]
    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    assert cli(eval_main, f"ckpt_path={ckpt}", "split=nope", f"hydra.run.dir={tmp_path}/e") == 2
    assert err_lines(capsys) == [
        "bridging-eval: error: split='nope': expected one of train, dev, test"
    ]
    mods = "eval.modalities=[x]"
    assert cli(eval_main, f"ckpt_path={ckpt}", mods, f"hydra.run.dir={tmp_path}/e") == 2
    assert err_lines(capsys) == [
        "bridging-eval: error: eval.modalities=['x']: unknown modality ['x']: expected a "
        "subset of ['a', 't', 'v']"
    ]
    assert cli(eval_main, "ckpt_path=x", "data=nothere", f"hydra.run.dir={tmp_path}/e") == 2
    assert err_lines(capsys) == [
        "bridging-eval: error: In 'eval': Could not find 'data/nothere'",
        "Available options in 'data': iemocap meld synthetic synthetic_meld tiny tiny_meld",
    ]
    assert (
        cli(
            predict_main,
            f"ckpt_path={tmp_path}/none.ckpt",
            "output=p.csv",
            f"hydra.run.dir={tmp_path}/p",
        )
        == 2
    )
    assert err_lines(capsys) == [
        f"bridging-predict: error: {tmp_path}/none.ckpt: no such checkpoint file"
    ]


def test_eval_and_predict_on_data_of_other_sizes_name_the_modality(trained, odd_data, capsys):
    from bridging.cli.eval import main as eval_main
    from bridging.cli.predict import main as predict_main

    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    path = odd_data / "other_total.pkl"
    want = (
        f"{ckpt}: modality 'a' has 110 features per utterance in the data {path} but the model "
        "was trained with 100 (checkpoint facts.feature_sizes {'a': 100, 'v': 512}, data "
        "{'a': 110, 'v': 512})"
    )
    run_dir = odd_data / "eval_run"
    assert (
        cli(
            eval_main,
            f"ckpt_path={ckpt}",
            "data=iemocap",
            f"data.path={path}",
            f"hydra.run.dir={run_dir}",
        )
        == 2
    )
    assert err_lines(capsys) == [f"bridging-eval: error: {want}"]
    assert (
        cli(
            predict_main,
            f"ckpt_path={ckpt}",
            "data=iemocap",
            f"data.path={path}",
            f"output={odd_data}/p.csv",
            f"hydra.run.dir={run_dir}",
        )
        == 2
    )
    assert err_lines(capsys) == [f"bridging-predict: error: {want}"]


def test_the_readme_data_override_works_for_eval_and_predict(trained, odd_data, capsys):
    """``data=iemocap data.path=FILE`` without ``+modalities=...`` (the data config
    interpolates a top-level ``modalities`` that eval.yaml and predict.yaml now have)."""
    from bridging.cli.eval import main as eval_main
    from bridging.cli.predict import main as predict_main

    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    data = ["data=iemocap", f"data.path={odd_data / 'fits.pkl'}"]
    out = odd_data / "fits_eval"
    assert cli(eval_main, f"ckpt_path={ckpt}", "split=dev", *data, f"hydra.run.dir={out}") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["path"] == str(odd_data / "fits.pkl")
    assert metrics["split"] == "dev" and metrics["eval_modalities"] == ["a", "v"]
    preds = odd_data / "fits.csv"
    assert (
        cli(predict_main, f"ckpt_path={ckpt}", *data, f"output={preds}", f"hydra.run.dir={out}_p")
        == 0
    )
    n = metrics["data"]["splits"]["test"]["utterances"]
    assert len(preds.read_text().splitlines()) == 1 + n
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {n} predictions to {preds}"


def test_prediction_outputs_that_cannot_be_written_name_the_output(trained, tmp_path, capsys):
    from bridging.cli.predict import main as predict_main

    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    (tmp_path / "afile").write_text("x")
    cases = {
        tmp_path: f"output={tmp_path}: is a directory; give a file name",
        tmp_path / "afile" / "p.csv": (
            f"output={tmp_path}/afile/p.csv: cannot create it: {tmp_path}/afile is not a directory"
        ),
    }
    for output, msg in cases.items():
        assert (
            cli(
                predict_main,
                f"ckpt_path={ckpt}",
                f"output={output}",
                f"hydra.run.dir={tmp_path}/run",
            )
            == 2
        )
        assert err_lines(capsys) == [f"bridging-predict: error: {msg}"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_named(trained, tmp_path, capsys):
    from bridging.cli.predict import main as predict_main

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    assert (
        cli(
            predict_main, f"ckpt_path={ckpt}", f"output={ro}/p.csv", f"hydra.run.dir={tmp_path}/run"
        )
        == 2
    )
    assert err_lines(capsys) == [
        f"bridging-predict: error: output={ro}/p.csv: cannot write it: {ro} is read-only"
    ]


def test_resume_from_code_running_checkpoint_via_the_command(bad_ckpts, tmp_path, capsys):
    from bridging.cli.train import main as train_main

    root, _ = bad_ckpts
    evil = root / "evil.ckpt"
    assert cli(train_main, *TINY, f"ckpt_path={evil}", f"hydra.run.dir={tmp_path}/r") == 2
    assert err_lines(capsys) == [
        f"bridging-train: error: {evil}: not a bridging checkpoint: refused without running "
        "anything of it: loading it would call posix.system, which no bridging checkpoint "
        "needs (a file that runs code when loaded, or one saved by another program)"
    ]


def test_predict_audio_with_a_model_of_pickle_features_says_how_to_make_one(
    trained, tmp_path, capsys
):
    from bridging.cli.predict_audio import main as predict_audio_main

    ckpt = trained[0] / "checkpoints" / "best.ckpt"
    (tmp_path / "c.csv").write_text("file,speaker\na.wav,M\n")
    assert predict_audio_main([str(ckpt), f"{tmp_path}/c.csv", f"{tmp_path}/p.csv"]) == 2
    assert err_lines(capsys) == [
        f"bridging-predict-audio: error: {ckpt}: predicting from wav files needs a model "
        "trained on features bridging extracted from wav files; its audio features are "
        "'synthetic' (facts.extractors['a']), which bridging cannot re-create from a wav file "
        "(e.g. synthetic data or the public IEMOCAP pickles). Make one with `bridging-data "
        "prepare-iemocap ROOT OUT` (eGeMAPS, ComParE or HuBERT features) and `bridging-train "
        "data=iemocap data.path=OUT experiment=audio_only`."
    ]


def test_real_commands_exit_2_with_one_line_and_full_error_shows_the_traceback(tmp_path):
    missing = tmp_path / "missing.ckpt"
    res = run("bridging-eval", f"ckpt_path={missing}", f"hydra.run.dir={tmp_path}/e")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"bridging-eval: error: {missing}: no such checkpoint file"]
    res = run(
        "bridging-eval",
        f"ckpt_path={missing}",
        f"hydra.run.dir={tmp_path}/e",
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr
    assert res.stderr.splitlines()[-1] == (
        f"bridging.data.records.DataError: {missing}: no such checkpoint file"
    )


def test_atomic_writers_name_the_output_not_their_temporary_file(tmp_path):
    from bridging.utils.files import atomic_write_json

    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(OutputError) as e:
        atomic_write_json(tmp_path / "metrics.json", {})
    assert str(e.value) == (
        f"{tmp_path}/metrics.json: is a directory; refusing to replace it with a file"
    )
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError) as e:
        atomic_write_json(tmp_path / "f" / "m.json", {})
    assert str(e.value) == (
        f"{tmp_path}/f/m.json: cannot create its folder {tmp_path}/f: File exists"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "metrics.json"]


# ------------------------------------------------------- 7. an all-silent recording is flagged
@pytest.fixture(scope="module")
def speech_model(tmp_path_factory):
    """A tiny audio-only model trained on eGeMAPS features of a fake IEMOCAP release
    (standardised with the training split's mean and std, saved with the extractor)."""
    pytest.importorskip("opensmile")
    from bridging.runs.experiment import train
    from bridging.speech.iemocap import prepare_iemocap
    from bridging.speech.testing import write_fake_release

    root = tmp_path_factory.mktemp("speech")
    written = write_fake_release(root / "release")
    prepare_iemocap(root / "release", root / "prepared", label_set="iemocap_4", progress=False)
    out = root / "run"
    train(
        compose(
            [
                f"paths.output_dir={out}",
                *TINY,
                "experiment=audio_only",
                "data=iemocap",
                f"data.path={root / 'prepared'}",
                "trainer.max_epochs=1",
                "model.gnn_nheads=2",
            ]
        )
    )
    return out / "checkpoints" / "best.ckpt", written, root


def test_an_all_silent_wav_gets_a_one_line_warning_or_is_refused(speech_model, tmp_path, capsys):
    from bridging.cli.predict_audio import main as predict_audio_main
    from bridging.recipes import load_recipe
    from bridging.speech.audio import write_wav
    from bridging.speech.extractors import pipeline_from_spec
    from bridging.speech.inference import FAR_SD

    ckpt, written, _ = speech_model
    speech = [w["wav"] for w in written if w["session"] == 5][:2]
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16000, np.float32), 16000)
    rows = [f"{speech[0]},M", f"{silent},F", f"{speech[1]},M"]
    (tmp_path / "c.csv").write_text("file,speaker\n" + "\n".join(rows) + "\n")
    # what the check compares: z-scores against the training mean and std saved with the model
    spec = load_recipe(ckpt).facts.extractors["a"]
    mean, std = (np.asarray(spec["projection"][k]) for k in ("mean", "std"))
    pipe = pipeline_from_spec({**spec, "projection": None})
    z = {f: np.abs((pipe.features_of(f) - mean) / std) for f in [*speech, silent]}
    assert all((z[f] > FAR_SD).sum() == 0 for f in speech)
    n_far, j = int((z[silent] > FAR_SD).sum()), int(z[silent].argmax())
    assert n_far > 0.05 * len(mean)
    msg = (
        f"{silent}: features far outside the model's training range ({n_far} of {len(mean)} "
        f"beyond 10 training standard deviations, up to {z[silent][j]:.1f} at feature {j}): "
        "digital silence or a near-constant recording? its prediction is unreliable"
    )
    out = tmp_path / "p.csv"
    args = [str(ckpt), f"{tmp_path}/c.csv", str(out)]
    assert predict_audio_main(args) == 0
    assert err_lines(capsys) == [f"bridging-predict-audio: warning: {msg}"]
    assert len(out.read_text().splitlines()) == 4  # the prediction is still made
    out.unlink()
    assert predict_audio_main([*args, "--out-of-range", "refuse"]) == 2
    assert err_lines(capsys) == [
        f"bridging-predict-audio: error: {msg} (refused: out of range; 'warn' predicts anyway)"
    ]
    assert not out.exists()


def test_far_outside_needs_many_features_far_out():
    from bridging.speech.inference import far_outside

    class Pipe:
        projection = {"kind": "standardize"}

    x = np.zeros((3, 40), np.float32)
    x[1, :2] = 11.0  # 2 of 40 (5%): not flagged
    x[2, :3] = [-12.0, 11.0, 30.0]  # 3 of 40
    assert far_outside(Pipe(), x) == [(2, 3, 30.0, 2)]
    Pipe.projection = None  # no saved training range: nothing to compare with
    assert far_outside(Pipe(), x) == []


def test_feature_extraction_shows_no_progress_bar_into_a_log(tmp_path, monkeypatch):
    import io

    from bridging.speech.audio import write_wav
    from bridging.speech.extractors import Extractor, extract_files

    class Loudness(Extractor):
        registered_name = "test_loudness"

        def __init__(self):
            super().__init__()
            self.dim = 1

        def extract(self, signal):
            return np.array([np.abs(signal).mean()], np.float32)

    files = []
    for i in range(25):
        files.append(tmp_path / f"{i}.wav")
        write_wav(files[-1], np.full(1600, 0.01 * i, np.float32), 16000)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    feats = extract_files(Loudness(), files)
    np.testing.assert_allclose(feats[:, 0], 0.01 * np.arange(25), atol=1e-4)
    assert log.getvalue() == ""  # not a terminal: no bar
    extract_files(Loudness(), files, progress=True)
    assert "features: 0%| | 0/25" in " ".join(log.getvalue().split())  # asked for: shown
