"""The masked recipe end to end on tiny synthetic data: speech-only selection and test,
full-modality metrics, the graph-free variant, masks on training batches only, the grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from bridging.recipes import load_recipe
from bridging.recipes.masked import MASK_STATE_KEY, MaskedRecipe
from bridging.recipes.masking import SCENARIOS, ModalityMask
from bridging.runs.evaluate import evaluate
from bridging.runs.experiment import train
from conftest import TINY

EXPERIMENTS = ["masked", "masked_nognn", "av_speech_only"]


def _train(tmp_path_factory, name, overrides, tiny=TINY):
    from bridging.runs.config import compose

    out = tmp_path_factory.mktemp(name)
    cfg = compose("train", [f"paths.output_dir={out}", *tiny, *overrides])
    return out, train(cfg)


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
    # the CSV logger on (TINY turns it off): the logs must keep the speech-only figures
    return _train(
        tmp_path_factory,
        "masked",
        # keep last.ckpt (the full training state: callback scores, the mask stream)
        ["experiment=masked", "trainer.max_epochs=2", "keep_checkpoints=full"],
        tiny=["debug=tiny"],
    )


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_compose(compose_cfg, name):
    cfg = compose_cfg([f"experiment={name}"])
    assert cfg.experiment_name == name
    assert list(cfg.modalities) == ["a", "v"] and list(cfg.eval.modalities) == ["a"]
    assert (cfg.model.seqcontext_nlayer, cfg.model.gnn_nheads, cfg.model.drop_rate) == (4, 7, 0.1)
    if name.startswith("masked"):
        assert cfg.recipe._target_ == "bridging.recipes.masked.MaskedRecipe"
        m = cfg.recipe.mask
        # the authors' policy: audio 0.1, video 0.1, random the rest; p_none (ours) off
        assert (m.p_none, m.p_audio_full, m.p_other_full, m.p_random) == (0.0, 0.1, 0.1, "auto")
        assert (m.random.a.p, m.random.v.p, m.random.t.p) == (0.2, 0.2, 0.2)
        assert (m.random.a.span, m.random.v.span, m.random.t.span) == (1, 1, 1)
        assert (m.granularity, m.rescale) == ("batch", False)
        masker = ModalityMask(**OmegaConf.to_container(m, resolve=True))
        assert masker.probs == pytest.approx(
            {"p_none": 0.0, "p_audio_full": 0.1, "p_other_full": 0.1, "p_random": 0.8}
        )
        assert cfg.model.gnn == ("none" if name == "masked_nognn" else "rgcn_transformer")
    else:
        assert cfg.recipe._target_ == "bridging.recipes.teacher.TeacherRecipe"


def test_per_modality_rates_are_separate_keys(compose_cfg):
    """random.a.p / random.v.p set apart from the shared p; t follows v unless set."""
    m = compose_cfg(
        ["experiment=masked", "modalities=[a,t,v]", "recipe.mask.random.v.p=0.4"]
    ).recipe.mask
    assert (m.random.a.p, m.random.v.p, m.random.t.p) == (0.2, 0.4, 0.4)
    m = compose_cfg(
        ["experiment=masked", "recipe.mask.random.t.p=0.1", "recipe.mask.random.v.span=3"]
    ).recipe.mask
    assert (m.random.a.p, m.random.v.p, m.random.t.p) == (0.2, 0.2, 0.1)
    assert (m.random.a.span, m.random.v.span, m.random.t.span) == (1, 3, 3)
    m = compose_cfg(["experiment=masked", "recipe.mask.p=0.3"]).recipe.mask
    assert (m.random.a.p, m.random.v.p, m.random.t.p) == (0.3, 0.3, 0.3)


def test_p_none_auto_still_works_and_two_autos_are_refused(compose_cfg):
    cfg = compose_cfg(["experiment=masked", "recipe.mask.p_none=auto", "recipe.mask.p_random=0.6"])
    masker = ModalityMask(**OmegaConf.to_container(cfg.recipe.mask, resolve=True))
    assert masker.probs["p_none"] == pytest.approx(0.2)
    cfg = compose_cfg(["experiment=masked", "recipe.mask.p_none=auto"])
    with pytest.raises(ValueError, match="only one of p_none, p_random may be auto"):
        ModalityMask(**OmegaConf.to_container(cfg.recipe.mask, resolve=True))


def test_sweep_and_search_configs_compose(compose_cfg):
    cfg = compose_cfg(["experiment=masked_nognn", "sweep=mask_grid"])
    assert cfg.recipe.mask.p_random == "auto" and cfg.recipe.mask.p_none == 0.0
    assert cfg.model.gnn == "none"
    cfg = compose_cfg(["experiment=masked", "hparams_search=mask_optuna"])
    assert cfg.recipe.mask.p_random == "auto" and cfg.recipe.mask.p_none == 0.0


#: The authors' settings (p_audio_full, p_other_full, audio rate, video rate).
AUTHORS_POINTS = [(0.1, 0.1, 0.2, 0.2), (0.3, 0.3, 0.2, 0.2)]


def _compose_with_hydra(overrides):
    from bridging.runs.config import compose

    return compose("train", overrides, return_hydra_config=True)


def test_mask_grid_contains_the_authors_points(compose_cfg):
    """The points of sweep=mask_grid (Hydra's own sweep parser on hydra.sweeper.params)
    include both of the authors' settings; composed as jobs, those resolve to the authors'
    policies (p_random the rest, a and v at the swept rate), and every point is valid."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = _compose_with_hydra(["experiment=masked", "sweep=mask_grid"])
    params = cfg.hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    axes = {o.get_key_element(): [float(v) for v in o.sweep_string_iterator()] for o in parsed}
    assert set(axes) == {"recipe.mask.p_audio_full", "recipe.mask.p_other_full", "recipe.mask.p"}
    points = list(itertools.product(*axes.values()))
    assert len(points) == 27
    assert max(axes["recipe.mask.p_audio_full"]) + max(axes["recipe.mask.p_other_full"]) <= 1
    names = list(axes)
    for p_a, p_o, r_a, r_v in AUTHORS_POINTS:
        assert r_a == r_v and (p_a, p_o, r_a) in points
        overrides = [f"{k}={v}" for k, v in zip(names, (p_a, p_o, r_a))]
        m = compose_cfg(["experiment=masked", "sweep=mask_grid", *overrides]).recipe.mask
        masker = ModalityMask(**OmegaConf.to_container(m, resolve=True))
        assert masker.probs == pytest.approx(
            {"p_none": 0.0, "p_audio_full": p_a, "p_other_full": p_o, "p_random": 1 - p_a - p_o}
        )
        assert masker.random_options("a") == {"p": r_a, "span": 1}
        assert masker.random_options("v") == {"p": r_v, "span": 1}


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
    policy = on_disk["mask_policy"]
    assert (policy["p_none"], policy["p_audio_full"], policy["p_other_full"]) == (0.0, 0.1, 0.1)
    assert policy["p_random"] == pytest.approx(0.8)
    assert policy["random"]["a"] == policy["random"]["v"] == {"p": 0.2, "span": 1}
    # the full-modality evaluation is not logged: the last test/wf1 in the CSV is speech-only
    import csv

    rows = [r for r in csv.DictReader((out / "csv" / "metrics.csv").open()) if r.get("test/wf1")]
    assert float(rows[-1]["test/wf1"]) == pytest.approx(on_disk["test"]["wf1"], abs=1e-6)
    assert on_disk["hparams"]["mask.p_random"] == "auto"  # resolved in mask_policy


def test_selection_and_test_are_speech_only(masked_run):
    out, metrics = masked_run
    best = out / "checkpoints" / "best.ckpt"
    dev_a = evaluate(best, split="dev", modalities=["a"])["dev"]
    assert metrics["dev"]["wf1"] == pytest.approx(dev_a["wf1"], abs=1e-6)
    assert metrics["dev"]["confusion"] == dev_a["confusion"]
    # the score the checkpoint callback selected on is the speech-only dev wF1 (its state is
    # in the full training state, last.ckpt; best.ckpt is weights-only)
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
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
    assert recipe.eval_modalities == ["a"] and recipe.modalities == ["a", "v"]
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
    assert recipe.eval_modalities == ["a"]
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
        assert r["mask_policy"]["p_none"] == 0.0
        assert r["mask_policy"]["p_random"] == pytest.approx(0.9 - r["mask_policy"]["p_audio_full"])


# -- the authors' audio feature dropout (experiment=audio_dropout) ------------------------------
def test_audio_dropout_preset_composes(compose_cfg):
    cfg = compose_cfg(["experiment=audio_dropout"])
    assert cfg.experiment_name == "audio_dropout"
    assert cfg.recipe._target_ == "bridging.recipes.masked.MaskedRecipe"
    assert list(cfg.modalities) == ["a"] and list(cfg.eval.modalities) == ["a"]
    masked = compose_cfg(["experiment=masked"])
    for key in ("seqcontext_nlayer", "gnn_nheads", "drop_rate", "gnn"):
        assert cfg.model[key] == masked.model[key], key
    assert cfg.trainer.max_epochs == masked.trainer.max_epochs == 55
    m = cfg.recipe.mask
    assert (m.p_none, m.p_audio_full, m.p_other_full, m.p_random) == (0.0, 0.0, 0.0, "auto")
    assert (m.random.a.p, m.random.a.span, m.granularity, m.rescale) == (0.2, 1, "batch", False)
    masker = ModalityMask(**OmegaConf.to_container(m, resolve=True))
    assert masker.probs == {
        "p_none": 0.0,
        "p_audio_full": 0.0,
        "p_other_full": 0.0,
        "p_random": 1.0,
    }


def test_audio_dropout_fits_with_twenty_percent_audio_dropout(tmp_path_factory, monkeypatch):
    """One short fit of the preset on tiny data: every training batch is masked on audio only,
    about 20% of the audio dimensions per batch (the same in every utterance); no misleading
    full-modality figures for a single-modality model."""
    seen = []
    apply = ModalityMask.apply

    def spy(features, draw):
        out = apply(features, draw)
        seen.append((dict(features), draw, out))
        return out

    monkeypatch.setattr(ModalityMask, "apply", staticmethod(spy))
    out, metrics = _train(tmp_path_factory, "audio_dropout", ["experiment=audio_dropout"])
    assert metrics["modalities"] == ["a"] and metrics["eval_modalities"] == ["a"]
    assert "test_full" not in metrics and "dev_full" not in metrics
    assert "every modality" in metrics["full_eval_skipped"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert "test_full" not in on_disk and on_disk["mask_policy"]["p_random"] == 1.0
    assert on_disk["mask_policy"]["random"]["a"] == {"p": 0.2, "span": 1}
    assert (out / "checkpoints" / "best.ckpt").exists() and 0.0 <= metrics["test"]["wf1"] <= 1.0
    # the training batches: audio only, randomly masked, one pattern per batch
    assert len(seen) >= 4
    n_masked = n_dims = 0
    for features, draw, masked in seen:
        assert set(features) == {"a"} and SCENARIOS[int(draw.scenario)] == "random"
        mask = draw.masked["a"].reshape(-1)
        keep = ~mask.to(features["a"].device)
        assert not masked["a"][..., mask].any()  # zeroed in every utterance
        assert torch.equal(masked["a"][..., keep], features["a"][..., keep])
        n_masked, n_dims = n_masked + int(mask.sum()), n_dims + mask.numel()
    rate = n_masked / n_dims
    assert abs(rate - 0.2) <= 5 * (0.2 * 0.8 / n_dims) ** 0.5, (rate, n_dims)
    # the run's mask stream, continued from the checkpoint: 20% per dimension over many batches
    recipe = load_recipe(out / "checkpoints" / "best.ckpt", expect="masked")
    draws = [recipe.masker.draw({"a": 100}, batch_size=2, max_len=3) for _ in range(2000)]
    per_dim = torch.stack([d.masked["a"].reshape(-1) for d in draws]).float().mean(0)
    assert all(SCENARIOS[int(d.scenario)] == "random" for d in draws)
    assert float((per_dim - 0.2).abs().max()) <= 5 * (0.2 * 0.8 / 2000) ** 0.5


# -- Optuna: the authors' points are the first trials --------------------------------------------
def test_first_trials_sampler_answers_the_first_trials_then_samples():
    import optuna

    from bridging.runs.search import FirstTrialsSampler

    sampler = FirstTrialsSampler(
        base={"seed": 0, "n_startup_trials": 2},
        first_trials=[{"x": 0.1, "c": 1}, {"x": 0.3}],
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(
        lambda t: t.suggest_float("x", 0.0, 0.4) + t.suggest_categorical("c", [1, 2, 4]),
        n_trials=6,
    )
    trials = study.trials
    assert trials[0].params == {"x": 0.1, "c": 1}
    assert trials[1].params["x"] == 0.3 and trials[1].params["c"] in (1, 2, 4)
    later = {t.params["x"] for t in trials[2:]}
    assert len(later) == 4 and all(0.0 <= x <= 0.4 for x in later)

    bad = FirstTrialsSampler(first_trials=[{"x": 0.5}])
    with pytest.raises(ValueError, match=r"first_trials\[0\]: x=0\.5 lies outside its search"):
        optuna.create_study(sampler=bad).optimize(lambda t: t.suggest_float("x", 0, 0.4), 1)
    unused = FirstTrialsSampler(first_trials=[{"y": 1}])
    with pytest.warns(UserWarning, match=r"first_trials\[0\] sets \['y'\], which are not"):
        optuna.create_study(sampler=unused).optimize(lambda t: t.suggest_float("x", 0, 1), 1)
    with pytest.raises(ValueError, match=r"first_trials\[0\] must be a mapping"):
        FirstTrialsSampler(first_trials=[0.1])


def test_mask_optuna_first_trials_are_the_authors_points(tmp_path):
    """A real two-trial Optuna search on tiny data: trial 0 and trial 1 are the authors'
    settings (in this order), each job's resolved mask policy shows it."""
    cfg = _compose_with_hydra(["experiment=masked", "hparams_search=mask_optuna"])
    firsts = OmegaConf.to_container(cfg.hydra.sweeper.sampler.first_trials)
    assert [
        (
            f["recipe.mask.p_audio_full"],
            f["recipe.mask.p_other_full"],
            f["recipe.mask.random.a.p"],
            f["recipe.mask.random.v.p"],
        )
        for f in firsts
    ] == AUTHORS_POINTS
    assert all(set(f) <= set(cfg.hydra.sweeper.params) for f in firsts)

    exe = Path(sys.executable).parent / "bridging-train"
    sweep = tmp_path / "optuna"
    res = subprocess.run(
        [
            str(exe),
            "-m",
            "experiment=masked",
            "hparams_search=mask_optuna",
            *TINY,
            "trainer.max_epochs=1",
            "recipe.full_eval=false",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    for j, (p_a, p_o, r_a, r_v) in enumerate(AUTHORS_POINTS):
        policy = json.loads((sweep / str(j) / "metrics.json").read_text())["mask_policy"]
        assert (policy["p_none"], policy["p_audio_full"], policy["p_other_full"]) == (0, p_a, p_o)
        assert policy["p_random"] == pytest.approx(1 - p_a - p_o)
        assert policy["random"]["a"] == {"p": r_a, "span": 1}
        assert policy["random"]["v"] == {"p": r_v, "span": 1}
    import yaml

    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == set(cfg.hydra.sweeper.params)


def test_recipe_hyperparameters_keep_their_keys_and_values():
    """MaskedRecipe and StudentRecipe take EmotionRecipe's arguments as ``**recipe``: the
    checkpoints' hyper-parameters keep the same keys, in the same order, and values."""
    from bridging.recipes.student import StudentRecipe

    recipe, _ = _tiny_recipe({"p_none": 0.0}, seed=3)
    base = ["facts", "modalities", "model", "optim", "eval_modalities", "data"]
    assert list(recipe.hparams) == [*base, "mask", "seed", "full_eval"]
    assert recipe.hparams["eval_modalities"] == ["a"]  # the speech-only default
    assert (recipe.hparams["mask"], recipe.hparams["seed"]) == ({"p_none": 0.0}, 3)
    assert recipe.hparams["optim"] is None and recipe.hparams["full_eval"] is True
    common = {k: recipe.hparams[k] for k in ("facts", "model")}
    masked = MaskedRecipe(**common, modalities=["v"], optim={"lr": 0.01}, full_eval=False)
    assert masked.hparams["eval_modalities"] is None and masked.hparams["optim"] == {"lr": 0.01}
    student = StudentRecipe(**common, modalities=["a"], kd={"alpha": 0.3}, eval_modalities=["a"])
    assert list(student.hparams) == [*base, "teacher", "kd", "teacher_info"]
    assert student.hparams["kd"] == {"alpha": 0.3} and student.hparams["teacher"] is None
    assert student.hparams["eval_modalities"] == ["a"]
    with pytest.raises(TypeError):
        MaskedRecipe(**common)  # modalities is still required
