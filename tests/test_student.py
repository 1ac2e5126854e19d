"""The distilled speech-only student: pipeline with and without a teacher checkpoint, the
checkpoint without the teacher, the teacher cache, metrics, sweeps (tiny synthetic data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.recipes import load_recipe, read_checkpoint
from bridging.recipes.student import StudentRecipe, weights_sha256
from bridging.recipes.teacher import TeacherRecipe
from bridging.runs.evaluate import evaluate
from bridging.runs.experiment import train
from bridging.runs.teacher import attach_teacher, teacher_run_config
from conftest import TINY

EPOCHS = "trainer.max_epochs=2"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is several times faster
    than two fighting other processes (restored after this module)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _compose(out, overrides):
    from bridging.runs.config import compose

    return compose("train", [f"paths.output_dir={out}", *overrides])


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """experiment=student_kd without a teacher checkpoint: the teacher is trained first."""
    out = tmp_path_factory.mktemp("student_pipeline")
    metrics = train(_compose(out, ["experiment=student_kd", *TINY, EPOCHS]))
    return out, metrics


@pytest.fixture(scope="module")
def given_run(tmp_path_factory, pipeline_run):
    """experiment=student_kd with teacher.ckpt_path set (the teacher of the first run)."""
    teacher_ckpt = pipeline_run[0] / "teacher" / "checkpoints" / "best.ckpt"
    out = tmp_path_factory.mktemp("student_given")
    cfg = _compose(
        out,
        [
            "experiment=student_kd",
            *TINY,
            EPOCHS,
            f"recipe.teacher.ckpt_path={teacher_ckpt}",
            "recipe.kd.emb_weight=0.5",
            "recipe.kd.alpha=0.7",
        ],
    )
    return out, train(cfg), teacher_ckpt


def tiny_datamodule(modalities=("a", "v")):
    dm = IEMOCAPDataModule(
        modalities=list(modalities),
        batch_size=4,
        synthetic={
            "seed": 0,
            "n_dialogues": 16,
            "n_test_dialogues": 4,
            "min_len": 4,
            "max_len": 12,
            "mean_len": 8,
        },
    )
    dm.setup()
    return dm


def make_recipe(cls, dm, modalities, **kw):
    model = {
        "seqcontext_nlayer": 1,
        "gnn_nheads": kw.pop("heads", 7),
        "drop_rate": 0.1,
        "pad_mode": kw.pop("pad_mode", "mask"),
    }
    return cls(facts=dm.facts.to_dict(), modalities=list(modalities), model=model, **kw)


# -- configs ---------------------------------------------------------------------------------


def test_student_experiment_composes(compose_cfg):
    cfg = compose_cfg(["experiment=student_kd"])
    assert cfg.recipe._target_ == "bridging.recipes.student.StudentRecipe"
    assert list(cfg.modalities) == ["a"] and cfg.recipe.teacher.ckpt_path is None
    assert (cfg.model.seqcontext_nlayer, cfg.model.gnn_nheads, cfg.model.drop_rate) == (4, 7, 0.1)
    assert set(cfg.recipe.kd) >= {
        "temperature",
        "alpha",
        "emb_weight",
        "emb_kind",
        "cls_weight",
        "margin",
        "projection",
        "cache",
    }


def test_the_teacher_trained_first_has_the_teacher_experiments_settings(compose_cfg, tmp_path):
    from omegaconf import OmegaConf

    student = compose_cfg(["experiment=student_kd", "recipe.kd.temperature=8"])
    derived = teacher_run_config(student, student.recipe.teacher, tmp_path / "t")
    teacher = compose_cfg(["experiment=teacher"], output_dir=tmp_path / "t")
    assert OmegaConf.to_container(derived, resolve=True) == OmegaConf.to_container(
        teacher, resolve=True
    )
    more = teacher_run_config(
        student, {"modalities": ["a", "t", "v"], "overrides": ["trainer.max_epochs=7"]}, "x"
    )
    assert list(more.data.modalities) == ["a", "t", "v"] and more.trainer.max_epochs == 7


def test_sweep_configs_compose():
    from bridging.runs.config import compose

    grid = compose("train", ["experiment=student_kd", "sweep=kd_grid"], return_hydra_config=True)
    params = grid.hydra.sweeper.params
    assert len(params["recipe.kd.temperature"].split(",")) == 4
    assert len(params["recipe.kd.alpha"].split(",")) == 5
    opt = compose(
        "train", ["experiment=student_kd", "hparams_search=kd_optuna"], return_hydra_config=True
    )
    assert "OptunaSweeper" in opt.hydra.sweeper._target_
    assert opt.hydra.sweeper.direction == "maximize"
    assert set(opt.hydra.sweeper.params) == {
        "recipe.kd.temperature",
        "recipe.kd.alpha",
        "recipe.kd.emb_weight",
    }


# -- the pipeline ------------------------------------------------------------------------------


def test_pipeline_trains_the_teacher_first_in_the_run_dir(pipeline_run):
    out, metrics = pipeline_run
    tdir = out / "teacher"
    teacher_metrics = json.loads((tdir / "metrics.json").read_text())
    assert teacher_metrics["recipe"] == "teacher" and teacher_metrics["modalities"] == ["a", "v"]
    assert metrics["recipe"] == "student_kd"
    assert metrics["modalities"] == ["a"] and metrics["eval_modalities"] == ["a"]
    t = metrics["teacher"]
    assert t["trained_by_this_run"] is True and Path(t["trained_in"]) == tdir
    assert Path(t["ckpt_path"]).resolve() == (tdir / "checkpoints" / "best.ckpt").resolve()
    # same data, same best checkpoint: the teacher's test figures agree with its own run
    assert t["test"]["wf1"] == pytest.approx(teacher_metrics["test"]["wf1"], abs=1e-6)
    assert t["test"]["confusion"] == teacher_metrics["test"]["confusion"]
    # a loaded student finds its recorded teacher again (and checks its weights)
    student = load_recipe(out / "checkpoints" / "best.ckpt")
    attach_teacher(student, None, tiny_datamodule(["a"]))
    assert student.teacher_info["sha256"] == t["sha256"] and student.teacher is not None


def test_metrics_hold_the_teacher_and_the_agreement(given_run):
    out, metrics, teacher_ckpt = given_run
    on_disk = json.loads((out / "metrics.json").read_text())
    t, agree = on_disk["teacher"], on_disk["agreement"]
    assert t["modalities"] == ["a", "v"] and t["eval_modalities"] == ["a", "v"]
    assert t["trained_in"] is None and t["cache"] is True
    assert set(t["test"]) >= {"wf1", "acc", "mf1", "per_class_f1", "confusion"}
    teacher_eval = evaluate(teacher_ckpt)
    assert t["test"]["wf1"] == pytest.approx(teacher_eval["test"]["wf1"], abs=1e-6)
    n_test = on_disk["data"]["splits"]["test"]["utterances"]
    pairs = torch.tensor(agree["pairs"])
    assert agree["utterances"] == n_test == int(pairs.sum())
    assert agree["rate"] == pytest.approx(float(pairs.trace()) / n_test)
    # rows are the student's predictions: they sum to the student's predicted counts
    student_pred = torch.tensor(on_disk["test"]["confusion"]).sum(0)
    assert pairs.sum(1).tolist() == student_pred.tolist()
    assert on_disk["kd"]["alpha"] == 0.7 and on_disk["hparams"]["kd.emb_weight"] == 0.5


def test_student_checkpoint_has_no_teacher_and_records_it(given_run):
    out, metrics, teacher_ckpt = given_run
    ckpt = read_checkpoint(out / "checkpoints" / "best.ckpt")
    keys = list(ckpt["state_dict"])
    assert keys and all(not k.startswith(("teacher", "_teacher")) for k in keys)
    student_params = sum(1 for k in keys if k.startswith("model."))
    teacher_state = read_checkpoint(teacher_ckpt)["state_dict"]
    assert student_params == sum(1 for k in teacher_state if k.startswith("model."))
    # the a+v teacher's first layer takes 612 features; the student's only 100 (audio)
    assert ckpt["state_dict"]["model.rnn.transformer_out.weight"].shape[1] == 100
    info = ckpt["hyper_parameters"]["teacher_info"]
    expected = weights_sha256(load_recipe(teacher_ckpt))
    assert info["sha256"] == expected == ckpt["bridging"]["teacher"]["sha256"]
    assert Path(info["ckpt_path"]).resolve() == teacher_ckpt.resolve()
    assert ckpt["bridging"]["kind"] == "student_kd"


def test_student_checkpoint_loads_and_evaluates_speech_only_without_the_teacher(
    given_run, tmp_path
):
    out, metrics, teacher_ckpt = given_run
    moved = tmp_path / "teacher_gone.ckpt"
    teacher_ckpt.rename(moved)  # the teacher is not needed any more
    try:
        student = load_recipe(out / "checkpoints" / "best.ckpt")
        assert isinstance(student, StudentRecipe) and student.teacher is None
        assert student.eval_modalities == ["a"]
        ev = evaluate(out / "checkpoints" / "best.ckpt")
        assert ev["data"]["modalities"] == ["a"]  # no video loaded at all
        assert ev["test"]["wf1"] == pytest.approx(metrics["test"]["wf1"], abs=1e-6)
        assert ev["test"]["confusion"] == metrics["test"]["confusion"]
    finally:
        moved.rename(teacher_ckpt)


# -- the recipe --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def student_and_teacher(given_run):
    out, _, teacher_ckpt = given_run
    student = load_recipe(out / "checkpoints" / "best.ckpt")
    dm = tiny_datamodule()
    attach_teacher(student, None, dm)  # loads the recorded teacher (kd.cache on)
    return student, dm


def test_cached_teacher_outputs_equal_running_the_teacher(student_and_teacher):
    student, dm = student_and_teacher
    split = dm.split("train")
    assert student.cache_size == len(split)  # filled for the whole split before training
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):  # batches of other compositions than the ones that filled the cache
        idx = torch.randperm(len(split), generator=gen)[:5]
        batch = split.batch(idx)
        cached_logits, cached_emb = student.teacher_outputs(batch)
        with torch.no_grad():
            live = student.teacher(batch)
        torch.testing.assert_close(cached_logits, live.logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(cached_emb, live.embeddings, rtol=1e-4, atol=1e-5)


def test_training_step_logs_every_term_and_leaves_the_teacher_frozen(student_and_teacher):
    student, dm = student_and_teacher
    teacher = student.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert not any(p is q for p in student.parameters() for q in teacher.parameters())
    student.train()
    batch = dm.split("train").batch(torch.arange(4))
    losses = student.training_losses(batch)
    assert set(losses) == {"loss", "loss_kd", "loss_cls", "loss_emb"}
    kd = student.kd
    total = (
        kd["alpha"] * losses["loss_kd"]
        + (1 - kd["alpha"]) * kd["cls_weight"] * losses["loss_cls"]
        + kd["emb_weight"] * losses["loss_emb"]
    )
    torch.testing.assert_close(losses["loss"], total)
    assert float(losses["loss_emb"].detach()) > 0 and float(losses["loss_kd"].detach()) > 0
    losses["loss"].backward()
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    student.zero_grad()
    student.eval()


def test_moving_the_student_moves_its_teacher():
    dm = tiny_datamodule()
    student = make_recipe(StudentRecipe, dm, ["a"])
    teacher = make_recipe(TeacherRecipe, dm, ["a", "v"])
    student.set_teacher(teacher, "t.ckpt")
    student.double()
    assert next(teacher.parameters()).dtype == torch.float64
    assert "_teacher" not in dict(student.named_modules())
    assert not any(k.startswith("_teacher") for k in student.state_dict())


def test_embedding_size_mismatch_needs_a_projection():
    dm = tiny_datamodule()
    teacher = make_recipe(TeacherRecipe, dm, ["a", "v"], heads=7)  # embeddings 700
    student = make_recipe(StudentRecipe, dm, ["a"], heads=1, kd={"emb_weight": 1.0})
    with pytest.raises(ValueError, match=r"100 features, the teacher's 700.*kd\.projection=true"):
        student.set_teacher(teacher, "t.ckpt")
    projected = make_recipe(
        StudentRecipe,
        dm,
        ["a"],
        heads=1,
        kd={"emb_weight": 1.0, "projection": True, "emb_kind": "mse"},
    )
    projected.set_teacher(teacher, "t.ckpt")
    assert projected.projection.linear.weight.shape == (700, 100)
    losses = projected.training_losses(dm.split("train").batch(torch.arange(3)))
    losses["loss"].backward()
    assert projected.projection.linear.weight.grad is not None
    # the projection is rebuilt from the recorded teacher info when the checkpoint loads
    again = StudentRecipe(**dict(projected.hparams))
    again.load_state_dict(projected.state_dict())
    no_emb = make_recipe(StudentRecipe, dm, ["a"], heads=1, kd={"emb_weight": 0.0})
    no_emb.set_teacher(teacher, "t.ckpt")  # logit distillation only: sizes do not matter


def test_cache_is_off_for_a_batch_dependent_reference_teacher():
    dm = tiny_datamodule()
    ref = make_recipe(TeacherRecipe, dm, ["a", "v"], pad_mode="reference")
    student = make_recipe(StudentRecipe, dm, ["a"])
    student.set_teacher(ref, "ref.ckpt")
    attach_teacher(student, None, dm)
    assert student.cache_size == 0 and student.teacher_info["batch_independent"] is False
    batch = dm.split("train").batch(torch.arange(4))
    with torch.no_grad():
        torch.testing.assert_close(student.teacher_outputs(batch)[0], ref(batch).logits)
    forced = make_recipe(StudentRecipe, dm, ["a"], kd={"cache": True})
    forced.set_teacher(ref, "ref.ckpt")
    forced.teacher_outputs(batch)  # filled from the batches it is given
    assert forced.cache_size == 4


def test_a_teacher_with_another_label_set_is_refused():
    dm = tiny_datamodule()
    teacher = make_recipe(TeacherRecipe, dm, ["a", "v"])
    teacher.facts.label_names = ["hap", "sad", "neu", "ang", "exc", "fru"]
    student = make_recipe(StudentRecipe, dm, ["a"])
    with pytest.raises(ValueError, match="labels"):
        student.set_teacher(teacher, "t6.ckpt")


# -- sweeps ------------------------------------------------------------------------------------


def test_multirun_students_share_one_teacher(tmp_path):
    exe = Path(sys.executable).parent / "bridging-train"
    sweep = tmp_path / "sweep"
    res = subprocess.run(
        [
            str(exe),
            "-m",
            "experiment=student_kd",
            *TINY,
            "trainer.max_epochs=1",
            "recipe.kd.temperature=1,2",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(2)]
    assert [j["kd"]["temperature"] for j in jobs] == [1.0, 2.0]
    teachers = sorted(p.name for p in sweep.glob("teacher_*") if p.is_dir())
    assert len(teachers) == 1
    assert res.stdout.count("teacher trained on a+v") == 1  # trained once
    assert [j["teacher"]["trained_by_this_run"] for j in jobs] == [True, False]
    assert jobs[0]["teacher"]["sha256"] == jobs[1]["teacher"]["sha256"]
    assert not (sweep / "0" / "teacher").exists()
