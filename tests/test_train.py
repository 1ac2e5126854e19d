"""Teacher training end to end on tiny synthetic data: outputs, eval and predict agree."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bridging.data.records import DataError
from bridging.recipes import load_recipe
from bridging.runs.evaluate import evaluate, predict
from bridging.runs.experiment import train
from conftest import TINY

EXPERIMENTS = ["teacher", "teacher_atv", "audio_only", "cogmen_reference"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(compose_cfg, name):
    cfg = compose_cfg([f"experiment={name}"])
    assert cfg.experiment_name == name
    assert cfg.recipe._target_.endswith("Recipe")
    assert list(cfg.data.modalities) == list(cfg.modalities)


def test_paper_teacher_settings(compose_cfg):
    cfg = compose_cfg(["experiment=teacher"])
    assert list(cfg.modalities) == ["a", "v"]
    assert (cfg.model.seqcontext_nlayer, cfg.model.gnn_nheads, cfg.model.drop_rate) == (4, 7, 0.1)
    assert cfg.optim.lr == 1e-4 and cfg.optim.weight_decay == 1e-8
    ref = compose_cfg(["experiment=cogmen_reference"])
    assert (ref.model.seqcontext_nlayer, ref.model.gnn_nheads, ref.model.drop_rate) == (2, 1, 0.5)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    from bridging.runs.config import compose

    out = tmp_path_factory.mktemp("teacher")
    cfg = compose("train", [f"paths.output_dir={out}", *TINY, "trainer.max_epochs=3"])
    metrics = train(cfg)
    return out, metrics


def test_run_writes_its_outputs(teacher_run):
    out, metrics = teacher_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "config.yaml").exists()
    assert (out / "checkpoints" / "best.ckpt").exists()
    n_test = metrics["data"]["splits"]["test"]["utterances"]
    cm = torch.tensor(metrics["test"]["confusion"])
    assert cm.shape == (4, 4) and int(cm.sum()) == n_test
    assert metrics["test"]["acc"] == pytest.approx(float(cm.trace()) / n_test)
    for stage in ("test", "dev"):
        for k in ("wf1", "acc", "mf1"):
            assert 0.0 <= metrics[stage][k] <= 1.0
        assert set(metrics[stage]["per_class_f1"]) == {"hap", "sad", "neu", "ang"}
    assert metrics["best_epoch"] in range(3)
    assert metrics["modalities"] == ["a", "v"] and metrics["label_set"] == "iemocap_4"
    assert len(metrics["config_hash"]) == 16


TRAINING_STATE = {"optimizer_states", "lr_schedulers", "callbacks", "bridging_rng"}


def test_finished_run_keeps_only_a_weights_only_best_checkpoint(teacher_run):
    out, metrics = teacher_run
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt"]
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    ckpt = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert not TRAINING_STATE & set(ckpt)
    assert ckpt["epoch"] == metrics["best_epoch"]
    assert ckpt["bridging"]["kind"] == "teacher"
    assert ckpt["hyper_parameters"]["facts"]["label_set"] == "iemocap_4"
    recipe = load_recipe(out / "checkpoints" / "best.ckpt")
    assert set(ckpt["state_dict"]) == set(recipe.state_dict())


def test_keep_full_checkpoints(compose_cfg, tmp_path):
    out = tmp_path / "full"
    metrics = train(
        compose_cfg([*TINY, "trainer.max_epochs=2", "keep_checkpoints=full"], output_dir=out)
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert TRAINING_STATE <= set(last) and last["epoch"] == 1
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert "optimizer_states" not in best and best["epoch"] == metrics["best_epoch"]
    ev = evaluate(out / "checkpoints" / "best.ckpt")
    assert ev["test"]["confusion"] == metrics["test"]["confusion"]
    with pytest.raises(ValueError, match="keep_checkpoints='all'"):
        train(compose_cfg([*TINY, "keep_checkpoints=all"], output_dir=tmp_path / "bad"))


def test_checkpoints_are_written_atomically_in_the_background(compose_cfg, tmp_path):
    from pytorch_lightning.plugins.io import AsyncCheckpointIO

    from bridging.runs.train import AtomicCheckpointIO, build_trainer

    trainer = build_trainer(compose_cfg([*TINY]), tmp_path)
    io = trainer.strategy.checkpoint_io
    assert isinstance(io, AsyncCheckpointIO)
    assert isinstance(io.checkpoint_io, AtomicCheckpointIO)
    writer = AtomicCheckpointIO()
    path = tmp_path / "ckpts" / "x.ckpt"
    writer.save_checkpoint({"state_dict": {"w": torch.arange(3.0)}}, path)
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [0.0, 1.0, 2.0]

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        writer.save_checkpoint({"state_dict": {}, "bad": Unpicklable()}, path)
    # a failed write leaves the previous checkpoint whole and no temporary file behind
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in path.parent.iterdir()] == ["x.ckpt"]


def test_eval_of_the_best_checkpoint_reproduces_the_test_metrics(teacher_run, tmp_path):
    out, metrics = teacher_run
    ev = evaluate(out / "checkpoints" / "best.ckpt", output_dir=tmp_path)
    assert ev["test"]["wf1"] == pytest.approx(metrics["test"]["wf1"], abs=1e-6)
    assert ev["test"]["confusion"] == metrics["test"]["confusion"]
    dev = evaluate(out / "checkpoints" / "best.ckpt", split="dev")
    assert dev["dev"]["wf1"] == pytest.approx(metrics["dev"]["wf1"], abs=1e-6)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "confusion_matrix.png").exists()


def test_speech_only_evaluation_zeroes_video(teacher_run):
    out, _ = teacher_run
    ckpt = out / "checkpoints" / "best.ckpt"
    recipe = load_recipe(ckpt)
    from bridging.runs.evaluate import datamodule_for

    dm = datamodule_for(recipe, None, ["a", "v"])
    dm.setup()
    batch = dm.split("test").batch(torch.arange(3))
    zeroed = batch.select(["a", "v"])
    zeroed.features["v"] = torch.zeros_like(zeroed.features["v"])
    with torch.no_grad():
        expected = recipe(zeroed).log_probs
        got = recipe(batch.select(["a"]), keep=["a"]).log_probs
    torch.testing.assert_close(got, expected)
    ev = evaluate(ckpt, modalities=["a"])
    assert ev["eval_modalities"] == ["a"]
    assert ev["data"]["modalities"] == ["a"]  # video not even loaded


def test_predict_writes_one_row_per_utterance(teacher_run, tmp_path):
    out, metrics = teacher_run
    path = tmp_path / "preds.csv"
    predict(out / "checkpoints" / "best.ckpt", path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == metrics["data"]["splits"]["test"]["utterances"]
    assert list(rows[0])[:5] == ["dialogue_id", "utterance_index", "speaker", "gold", "pred"]
    labels = ["hap", "sad", "neu", "ang"]
    correct = 0
    for r in rows:
        probs = [float(r[f"prob_{n}"]) for n in labels]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert r["pred"] == labels[max(range(4), key=probs.__getitem__)]
        assert r["speaker"] in ("M", "F")
        correct += r["pred"] == r["gold"]
    assert correct / len(rows) == pytest.approx(metrics["test"]["acc"], abs=1e-6)
    first = [r for r in rows if r["dialogue_id"] == rows[0]["dialogue_id"]]
    assert [int(r["utterance_index"]) for r in first] == list(range(len(first)))


def test_bad_checkpoints_get_clear_errors(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.ckpt: not a bridging checkpoint"):
        load_recipe(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "epoch": 1}, other)
    with pytest.raises(DataError, match="other.ckpt: not a bridging checkpoint"):
        load_recipe(other)
    with pytest.raises(DataError, match="no such checkpoint"):
        load_recipe(tmp_path / "missing.ckpt")


def test_wrong_kind_is_refused(teacher_run):
    out, _ = teacher_run
    with pytest.raises(DataError, match="kind 'teacher', expected one of \\['masked'\\]"):
        load_recipe(out / "checkpoints" / "best.ckpt", expect="masked")


def test_bridging_train_cli(tmp_path):
    """The real Hydra app, as a user runs it."""
    exe = Path(sys.executable).parent / "bridging-train"
    res = subprocess.run(
        [
            str(exe),
            *TINY,
            "experiment=audio_only",
            "trainer.max_epochs=1",
            f"hydra.run.dir={tmp_path}/run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "test weighted F1" in res.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["modalities"] == ["a"] and metrics["experiment"] == "audio_only"
    assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()
