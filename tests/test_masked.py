"""The masked recipe end to end on tiny synthetic data: speech-only selection and test,
full-modality metrics, the graph-free variant, masks on training batches only, the grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bridging.evaluation import evaluate
from bridging.recipes import load_recipe
from bridging.recipes.masked import MASK_STATE_KEY, MaskedRecipe
from bridging.training import train
from conftest import TINY

EXPERIMENTS = ["masked", "masked_nognn", "av_speech_only"]


def _train(tmp_path_factory, name, overrides, tiny=TINY):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bridging.paths import conf_dir

    out = tmp_path_factory.mktemp(name)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={out}", *tiny, *overrides])
    GlobalHydra.instance().clear()
    return out, train(cfg)


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
    # the CSV logger on (TINY turns it off): the logs must keep the speech-only figures
    return _train(
        tmp_path_factory,
        "masked",
        ["experiment=masked", "trainer.max_epochs=2"],
        tiny=["debug=tiny"],
    )


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_compose(compose_cfg, name):
    cfg = compose_cfg([f"experiment={name}"])
    assert cfg.experiment_name == name
    assert list(cfg.modalities) == ["a", "v"] and list(cfg.eval.keep) == ["a"]
    assert (cfg.model.seqcontext_nlayer, cfg.model.gnn_nheads, cfg.model.drop_rate) == (4, 7, 0.1)
    if name.startswith("masked"):
        assert cfg.recipe._target_ == "bridging.recipes.masked.MaskedRecipe"
        m = cfg.recipe.mask
        assert (m.p_none, m.p_audio_full, m.p_other_full, m.p_random) == (0.6, 0.1, 0.1, 0.2)
        assert (m.random.a.p, m.random.v.p, m.random.v.span, m.granularity) == (
            0.2,
            0.2,
            1,
            "batch",
        )
        assert cfg.model.gnn == ("none" if name == "masked_nognn" else "rgcn_transformer")
    else:
        assert cfg.recipe._target_ == "bridging.recipes.teacher.TeacherRecipe"


def test_sweep_and_search_configs_compose(compose_cfg):
    cfg = compose_cfg(["experiment=masked_nognn", "sweep=mask_grid"])
    assert cfg.recipe.mask.p_none == "auto" and cfg.model.gnn == "none"
    cfg = compose_cfg(["experiment=masked", "hparams_search=mask_optuna"])
    assert cfg.recipe.mask.p_none == "auto"


def test_metrics_hold_speech_only_and_full_modality_results(masked_run):
    out, metrics = masked_run
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["recipe"] == "masked" and on_disk["modalities"] == ["a", "v"]
    assert on_disk["eval_modalities"] == ["a"]
    assert on_disk["full_modalities"] == ["a", "v"]
    n_test = on_disk["data"]["splits"]["test"]["utterances"]
    for key in ("test", "dev", "test_full", "dev_full"):
        for k in ("wf1", "acc", "mf1"):
            assert 0.0 <= on_disk[key][k] <= 1.0
    assert int(torch.tensor(on_disk["test_full"]["confusion"]).sum()) == n_test
    assert on_disk["mask_policy"]["p_none"] == pytest.approx(0.6)
    # the full-modality evaluation is not logged: the last test/wf1 in the CSV is speech-only
    import csv

    rows = [r for r in csv.DictReader((out / "csv" / "metrics.csv").open()) if r.get("test/wf1")]
    assert float(rows[-1]["test/wf1"]) == pytest.approx(on_disk["test"]["wf1"], abs=1e-6)
    assert on_disk["hparams"]["mask.p_random"] == 0.2


def test_selection_and_test_are_speech_only(masked_run):
    out, metrics = masked_run
    best = out / "checkpoints" / "best.ckpt"
    dev_a = evaluate(best, split="dev", modalities=["a"])["dev"]
    assert metrics["dev"]["wf1"] == pytest.approx(dev_a["wf1"], abs=1e-6)
    assert metrics["dev"]["confusion"] == dev_a["confusion"]
    # the score the checkpoint callback selected on is the speech-only dev wF1
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    scores = [
        float(v["best_model_score"])
        for k, v in ckpt["callbacks"].items()
        if k.startswith("ModelCheckpoint") and v.get("best_model_score") is not None
    ]
    assert scores and scores[0] == pytest.approx(dev_a["wf1"], abs=1e-6)
    test_a = evaluate(best, modalities=["a"])["test"]
    assert metrics["test"]["confusion"] == test_a["confusion"]
    full = evaluate(best, modalities=["a", "v"])
    assert metrics["test_full"]["confusion"] == full["test"]["confusion"]
    assert MASK_STATE_KEY in ckpt


def test_checkpoint_loads_as_masked_recipe(masked_run):
    out, _ = masked_run
    recipe = load_recipe(out / "checkpoints" / "best.ckpt", expect="masked")
    assert isinstance(recipe, MaskedRecipe)
    assert recipe.eval_keep == ["a"] and recipe.modalities == ["a", "v"]
    assert recipe.masker.probs["p_other_full"] == pytest.approx(0.1)


def test_masked_nognn_fits(tmp_path_factory):
    out, metrics = _train(
        tmp_path_factory, "nognn", ["experiment=masked_nognn", "trainer.max_epochs=1"]
    )
    assert metrics["eval_modalities"] == ["a"] and "test_full" in metrics
    assert metrics["hparams"]["model.gnn"] == "none"
    recipe = load_recipe(out / "checkpoints" / "best.ckpt")
    assert recipe.model.gcn is None


def _tiny_recipe(mask, seed=0, modalities=("a", "v")):
    from bridging.data.datamodule import IEMOCAPDataModule

    dm = IEMOCAPDataModule(
        modalities=list(modalities),
        batch_size=4,
        synthetic={
            "seed": 0,
            "n_dialogues": 8,
            "n_test_dialogues": 2,
            "min_len": 3,
            "max_len": 6,
            "mean_len": 4,
        },
    )
    dm.setup()
    recipe = MaskedRecipe(
        facts=dm.facts.to_dict(),
        modalities=list(modalities),
        model={"seqcontext_nlayer": 1, "gnn_nheads": 1},
        mask=mask,
        seed=seed,
    )
    return recipe, dm.split("train").batch(torch.arange(4))


def test_training_batches_are_masked_and_evaluation_is_not_random():
    only_other = {"p_none": 0, "p_audio_full": 0, "p_other_full": 1, "p_random": 0}
    recipe, batch = _tiny_recipe(only_other, modalities=("a", "t", "v"))
    assert recipe.eval_keep == ["a"]
    seen = []
    forward = recipe.model.forward

    def spy(x, lengths, speakers):
        seen.append(x.detach().clone())
        return forward(x, lengths, speakers)

    recipe.model.forward = spy
    recipe.training_losses(batch)
    d_a = recipe.facts.feature_sizes["a"]
    assert seen[0].shape[-1] == recipe.facts.input_size(["a", "t", "v"])
    assert not seen[0][..., d_a:].any()  # text and video zeroed in training
    assert torch.equal(seen[0][..., :d_a], batch.features["a"])

    recipe, batch = _tiny_recipe(
        {"p_none": 0.6, "p_audio_full": 0.1, "p_other_full": 0.1, "p_random": 0.2}
    )
    recipe.eval()
    state = recipe.masker.generator.get_state()
    with torch.no_grad():
        one = recipe.eval_output(batch).log_probs
        two = recipe.eval_output(batch).log_probs
        zeroed = batch.select(["a", "v"])
        zeroed.features["v"] = torch.zeros_like(zeroed.features["v"])
        ref = recipe(zeroed).log_probs
    assert torch.equal(one, two)
    torch.testing.assert_close(one, ref)
    assert torch.equal(recipe.masker.generator.get_state(), state)  # eval draws nothing


def test_mask_stream_is_saved_and_restored_with_checkpoints():
    recipe, batch = _tiny_recipe(None, seed=7)
    recipe.masker(batch)
    ckpt = {}
    recipe.on_save_checkpoint(ckpt)
    after = recipe.masker(batch).features["v"]
    fresh, _ = _tiny_recipe(None, seed=7)
    fresh.on_load_checkpoint(ckpt)
    assert torch.equal(fresh.masker(batch).features["v"], after)


def test_mask_grid_multirun_two_jobs(tmp_path):
    exe = Path(sys.executable).parent / "bridging-train"
    sweep_dir = tmp_path / "grid"
    res = subprocess.run(
        [
            str(exe),
            "-m",
            "experiment=masked",
            "sweep=mask_grid",
            *TINY,
            "trainer.max_epochs=1",
            "recipe.full_eval=false",
            "recipe.mask.p_audio_full=0,0.1",
            "recipe.mask.p_other_full=0.1",
            "recipe.mask.p=0.2",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    files = sorted(sweep_dir.glob("*/metrics.json"))
    assert len(files) == 2
    runs = [json.loads(f.read_text()) for f in files]
    assert sorted(r["mask_policy"]["p_audio_full"] for r in runs) == [0.0, 0.1]
    for r in runs:
        assert r["eval_modalities"] == ["a"]
        assert r["mask_policy"]["p_none"] == pytest.approx(0.7 - r["mask_policy"]["p_audio_full"])
