"""Feature normalisation (data.normalize: none / global / speaker / online): the statistics
against a slow numpy reference, speakers across dialogues, the checkpoint round trip (eval,
resume), exports against PyTorch, causal = batch for online, bad values refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bridging.data.normalize import (
    DialogueNormalizer,
    Normalization,
    check_mode,
    dialogue_normalize,
    group_normalize,
)
from bridging.data.records import DataError
from bridging.data.speakers import actor_keys, split_actor_ids
from conftest import TINY
from test_hostile_input import cli, err_lines
from test_run_identity import digests


# ------------------------------------------------------------------ the slow reference
def ref_normalize(x, mean, sd, prior):
    """One speaker's pool ``x`` [n, D] (float64), each row normalised as the docs say:
    centred on the training mean, ``prior`` pseudo-utterances at the training variance, a
    per-speaker variance below 1e-12 replaced by the training variance."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    n = len(x)
    for j in range(x.shape[1]):
        y = x[:, j] - mean[j]
        m = sum(y) / (n + prior)
        v = (sum(v * v for v in y) + prior * sd[j] ** 2) / (n + prior) - m * m
        if v <= 1e-12:
            v = sd[j] ** 2
        out[:, j] = (y - m) / np.sqrt(v)
    return out


def numbers(n=23, d=5, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.normal(2.0, 3.0, (n, d))
    x[:, 3] = 7.0  # a constant feature
    return x.astype(np.float32)


def global_stats(x):
    sd = x.astype(np.float64).std(0)
    return x.astype(np.float64).mean(0), np.where(sd < 1e-6, 1.0, sd)


@pytest.mark.parametrize("prior", [0.0, 1.0, 2.5])
def test_speaker_pools_equal_the_reference(prior):
    x = numbers()
    groups = np.array([0] * 10 + [1] * 12 + [2])  # speaker 2: one utterance
    x[10:22, 1] = -4.0  # speaker 1 constant in dimension 1
    mean, sd = global_stats(x)
    got = group_normalize(
        torch.from_numpy(x),
        torch.from_numpy(groups),
        torch.tensor(mean, dtype=torch.float32),
        torch.tensor(sd, dtype=torch.float32),
        prior,
    ).numpy()
    assert np.isfinite(got).all()
    for g in range(3):
        sel = groups == g
        want = ref_normalize(x[sel], mean, sd, prior)
        np.testing.assert_allclose(got[sel], want, rtol=1e-4, atol=1e-4)
    # a constant feature stays finite (centred, sd 1); plain per-speaker standardisation
    # erases a speaker heard once to zeros, the prior keeps it
    if prior == 0:
        np.testing.assert_allclose(got[22], 0.0, atol=1e-6)
    else:
        assert np.abs(got[22]).sum() > 0.1


def padded(lengths, d=4, seed=1, n_speakers=3):
    gen = np.random.default_rng(seed)
    b, t = len(lengths), max(lengths)
    x = np.zeros((b, t, d), dtype=np.float32)
    spk = np.zeros((b, t), dtype=np.int64)
    for i, n in enumerate(lengths):
        x[i, :n] = gen.normal(1.0, 2.0, (n, d))
        spk[i, :n] = gen.integers(0, n_speakers, n)
    return x, spk


@pytest.mark.parametrize("online", [False, True])
def test_per_dialogue_statistics_equal_the_reference(online):
    lengths = [7, 1, 12]
    x, spk = padded(lengths)
    flat = np.concatenate([x[i, :n] for i, n in enumerate(lengths)])
    mean, sd = global_stats(flat)
    valid = np.arange(x.shape[1])[None, :] < np.array(lengths)[:, None]
    got = dialogue_normalize(
        torch.from_numpy(x),
        torch.from_numpy(spk),
        torch.from_numpy(valid),
        torch.tensor(mean, dtype=torch.float32),
        torch.tensor(sd, dtype=torch.float32),
        1.0,
        3,
        online=online,
    ).numpy()
    for i, n in enumerate(lengths):
        for k in range(n):
            same = [j for j in range(n) if spk[i, j] == spk[i, k] and (not online or j <= k)]
            pool = ref_normalize(x[i, same], mean, sd, 1.0)
            np.testing.assert_allclose(got[i, k], pool[same.index(k)], rtol=1e-4, atol=1e-4)
        assert (got[i, n:] == 0).all()  # padding stays zero


def test_online_causal_equals_batch_and_ends_at_the_pooled_statistics():
    x, spk = padded([15], seed=3)
    mean, sd = global_stats(x[0])
    args = (torch.tensor(mean, dtype=torch.float32), torch.tensor(sd, dtype=torch.float32), 1.0, 3)
    xt, st = torch.from_numpy(x), torch.from_numpy(spk)
    full = dialogue_normalize(xt, st, torch.ones_like(st, dtype=torch.bool), *args, online=True)
    pooled = dialogue_normalize(xt, st, torch.ones_like(st, dtype=torch.bool), *args, online=False)
    for k in range(15):
        part = dialogue_normalize(
            xt[:, : k + 1], st[:, : k + 1], torch.ones(1, k + 1, dtype=torch.bool), *args, True
        )
        torch.testing.assert_close(part, full[:, : k + 1], atol=1e-6, rtol=0)
    last = {int(s): k for k, s in enumerate(spk[0])}
    for k in last.values():  # each speaker's last utterance: its whole conversation's pool
        torch.testing.assert_close(full[0, k], pooled[0, k], atol=1e-5, rtol=0)


def test_fitted_training_statistics_and_a_constant_feature():
    x = numbers(40)
    norm = Normalization.fit("global", 1.0, {"a": x})
    mean, sd = global_stats(x)
    np.testing.assert_allclose(norm.mean["a"], mean, rtol=1e-6)
    np.testing.assert_allclose(norm.sd["a"], sd, rtol=1e-6)
    assert norm.sd["a"][3] == 1.0
    back = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert back.same_as(norm, ["a"]) and back.mode == "global"
    assert Normalization.fit("none", 1.0, {"a": x}).to_dict() == {"mode": "none", "prior": 1.0}
    assert not Normalization.from_dict(None).active  # checkpoints from before it existed


@pytest.mark.parametrize(
    "mode, prior, field, expected",
    [
        (
            "bogus",
            1.0,
            "data.normalize",
            "expected one of none, global, speaker, online, got 'bogus'",
        ),
        ("speaker", -1, "data.normalize_prior", "expected a finite number >= 0"),
        ("speaker", "x", "data.normalize_prior", "expected a finite number >= 0"),
        ("online", float("nan"), "data.normalize_prior", "expected a finite number >= 0"),
    ],
)
def test_bad_values_name_the_option(mode, prior, field, expected):
    with pytest.raises(DataError) as e:
        check_mode(mode, prior, where="f.pkl")
    assert str(e.value).startswith(f"f.pkl: {field}: {expected}")


# ------------------------------------------------------------------ speakers
def test_an_iemocap_actor_is_session_and_gender_across_dialogues():
    assert actor_keys("Ses01F_impro01", [0, 1, 1], ("M", "F")) == ["Ses01M", "Ses01F", "Ses01F"]
    assert actor_keys("Ses03_synth007", [1], ("M", "F")) == ["Ses03F"]
    # MELD's files carry slots, not names: a speaker is known within its dialogue
    assert actor_keys("dia12", [0, 2], ("s0", "s1", "s2")) == ["dia12/s0", "dia12/s2"]
    from bridging.data.records import Dialogue

    def dlg(i, s):
        return Dialogue(i, np.array(s), np.zeros(len(s), dtype=np.int64), {})

    ids, names = split_actor_ids([dlg("Ses02M_a", [0, 1]), dlg("Ses02F_b", [1, 0])], ("M", "F"))
    assert names == ["Ses02M", "Ses02F"]
    assert [i.tolist() for i in ids] == [[0, 1], [1, 0]]


def datamodule(mode, **kw):
    from bridging.data.datamodule import IEMOCAPDataModule

    dm = IEMOCAPDataModule(
        modalities=["a", "v"],
        synthetic={"n_dialogues": 24, "seed": 0, "min_len": 6, "max_len": 20, "mean_len": 10},
        normalize=mode,
        **kw,
    )
    dm.setup()
    return dm


def real(split, m):
    valid = torch.arange(split.labels.shape[1])[None, :] < split.lengths[:, None]
    return split.features[m][valid].numpy(), split.actors[valid].numpy()


def test_the_datamodule_fits_on_train_and_pools_actors_over_the_split():
    raw = datamodule("none")
    glob = datamodule("global")
    spk = datamodule("speaker")
    for m in ("a", "v"):
        x, _ = real(raw.split("train"), m)
        mean, sd = global_stats(x)
        np.testing.assert_allclose(glob.normalization.mean[m], mean, rtol=1e-5, atol=1e-6)
        g, _ = real(glob.split("train"), m)
        np.testing.assert_allclose(g.mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(g.std(0), 1.0, atol=1e-4)
        # speaker: each test actor's utterances of every test dialogue in one pool
        xt, actors = real(raw.split("test"), m)
        got, _ = real(spk.split("test"), m)
        names = spk.split("test").actor_names
        assert sorted(names) == ["Ses05F", "Ses05M"]
        for a in range(len(names)):
            sel = actors == a
            want = ref_normalize(xt[sel], mean, sd, 1.0)
            np.testing.assert_allclose(got[sel], want, rtol=1e-3, atol=1e-3)
    facts = spk.facts.normalization
    assert facts["mode"] == "speaker" and len(facts["mean"]["a"]) == spk.facts.feature_sizes["a"]
    assert spk.summary()["normalize"] == "speaker (prior 1)"
    # a given state is applied as it is, not refitted on another file's training split
    other = datamodule("none", normalization=glob.facts.normalization)
    assert other.normalization.same_as(glob.normalization, ["a", "v"])


# ------------------------------------------------------------------ runs: checkpoint round trip
def train_cli(*args) -> int:
    from bridging.cli.train import main

    return cli(main, *args)


RUN = [*TINY, "experiment=audio_only", "trainer.max_epochs=2", "keep_checkpoints=full"]


@pytest.fixture(scope="module")
def speaker_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("norm") / "run"
    assert train_cli(*RUN, "data.normalize=speaker", f"hydra.run.dir={out}") == 0
    return out


def test_the_checkpoint_carries_the_statistics_and_eval_applies_them(speaker_run, tmp_path):
    from bridging.cli.eval import main as eval_main

    ckpt = speaker_run / "checkpoints" / "best.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    norm = state["hyper_parameters"]["facts"]["normalization"]
    assert norm["mode"] == "speaker" and norm["prior"] == 1.0
    dm = datamodule_like_the_run()
    assert Normalization.from_dict(norm).same_as(dm.normalization, ["a"])
    trained = json.loads((speaker_run / "metrics.json").read_text())["test"]
    out = tmp_path / "eval"
    # the eval's data config says none: the model's own normalisation is used all the same
    code = cli(
        eval_main, f"ckpt_path={ckpt}", "data=tiny", "data.normalize=none", f"hydra.run.dir={out}"
    )
    assert code == 0
    got = json.loads((out / "metrics.json").read_text())["test"]
    assert got["wf1"] == pytest.approx(trained["wf1"], abs=1e-6)
    assert got["confusion"] == trained["confusion"]


def datamodule_like_the_run():
    from hydra.utils import instantiate

    from bridging.runs.config import compose

    cfg = compose("train", [*RUN, "data.normalize=speaker"])
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    return dm


@pytest.mark.parametrize(
    "override, line",
    [
        (
            "data.normalize=global",
            "data.normalize: the run was trained with normalisation speaker, this resume asks "
            "for global",
        ),
        (
            "data.normalize_prior=2",
            "data.normalize_prior: the run was trained with prior 1.0, this resume asks for 2.0",
        ),
    ],
)
def test_a_resume_with_another_normalisation_is_refused(
    speaker_run, tmp_path, capsys, override, line
):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(speaker_run, run, symlinks=True)
    before = digests(run)
    code = train_cli(
        *RUN, "data.normalize=speaker", override, "ckpt_path=last", f"hydra.run.dir={run}"
    )
    assert (code, err_lines(capsys)) == (2, [f"bridging-train: error: {run}: {line}"])
    assert digests(run) == before


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "data.normalize=bogus",
            "<synthetic>: data.normalize: expected one of none, global, speaker, online, got "
            "'bogus'",
        ),
        ("data.normalize_prior=-1", "<synthetic>: data.normalize_prior: expected a finite number"),
    ],
)
def test_train_refuses_bad_values_with_one_line(tmp_path, capsys, override, expected):
    out = tmp_path / "run"
    code = train_cli(*RUN, override, f"hydra.run.dir={out}")
    lines = err_lines(capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"bridging-train: error: {expected}")
    assert not (out / "metrics.json").exists()


def test_a_student_refuses_a_teacher_of_another_normalisation(speaker_run, tmp_path, capsys):
    """A teacher reads features as it was trained: a student on other ones is refused."""
    from bridging.cli.train import main

    teacher = tmp_path / "teacher"
    code = cli(
        main, *TINY, "experiment=teacher", "trainer.max_epochs=1", f"hydra.run.dir={teacher}"
    )
    assert code == 0
    capsys.readouterr()
    ckpt = teacher / "checkpoints" / "best.ckpt"
    out = tmp_path / "student"
    code = cli(
        main,
        *TINY,
        "experiment=student_kd",
        "trainer.max_epochs=1",
        f"recipe.teacher.ckpt_path={ckpt}",
        "data.normalize=online",
        f"hydra.run.dir={out}",
    )
    lines = err_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"bridging-train: error: teacher {ckpt}: facts.normalization: ")
    assert "data.normalize=none" in lines[0] and "data.normalize=online" in lines[0]


# ------------------------------------------------------------------ speech: batch, causal, export
def recipe_with(mode, seed=0):
    from test_speech_live_export import make_recipe

    recipe = make_recipe(wp=3, wf=2, seed=seed)
    gen = np.random.default_rng(seed)
    mean = gen.normal(0.5, 1.0, 88).astype(np.float32)
    sd = gen.uniform(0.5, 2.0, 88).astype(np.float32)
    recipe.facts.normalization = Normalization(mode, 1.0, {"a": mean}, {"a": sd}).to_dict()
    return recipe, mean, sd


def numpy_normalized(x, spk, mode, mean, sd):
    """The reference normalisation of one dialogue (x [T, D], speakers [T])."""
    if mode == "global":
        return (x - mean) / sd
    out = np.empty_like(x, dtype=np.float64)
    for k in range(len(x)):
        same = [j for j in range(len(x)) if spk[j] == spk[k] and (mode == "speaker" or j <= k)]
        out[k] = ref_normalize(x[same], mean, sd, 1.0)[same.index(k)]
    return out


@pytest.mark.parametrize("mode", ["global", "speaker", "online"])
def test_speech_model_and_exports_include_the_normalisation(tmp_path, mode):
    from bridging.speech.export import export_onnx, export_torchscript, load_exported
    from bridging.speech.inference import SpeechModel
    from test_speech_live_export import dialogue, make_recipe

    recipe, mean, sd = recipe_with(mode)
    plain = make_recipe(wp=3, wf=2, seed=0)  # the same weights, no normalisation
    x, spk = dialogue(11, seed=5)
    x = x * 3 + 1
    want = SpeechModel(plain, load_extractor=False).predict_features(
        numpy_normalized(x, spk.numpy(), mode, mean, sd).astype(np.float32), spk.tolist()
    )
    model = SpeechModel(recipe, load_extractor=False)
    np.testing.assert_allclose(model.predict_features(x, spk.tolist()), want, atol=1e-5)
    paths = [export_torchscript(recipe, tmp_path / "m.pt")]
    try:
        import onnxruntime  # noqa: F401

        paths.append(export_onnx(recipe, tmp_path / "m.onnx"))
    except ImportError:
        pass
    for path in paths:
        for t in (1, 4, 11):  # T dynamic: every length gives the reference
            got = np.exp(load_exported(path)(x[None, :t], spk[None, :t].numpy()))
            ref = SpeechModel(plain, load_extractor=False).predict_features(
                numpy_normalized(x[:t], spk[:t].numpy(), mode, mean, sd).astype(np.float32),
                spk[:t].tolist(),
            )
            np.testing.assert_allclose(got, ref, atol=1e-4, err_msg=f"{path.name} T={t}")
        meta = json.loads(Path(str(path) + ".json").read_text())
        assert meta["normalize"] == mode


def test_online_causal_mode_equals_batch_mode_at_the_end_of_the_conversation():
    from bridging.speech.inference import Session, SpeechModel
    from test_speech_live_export import dialogue

    recipe, _, _ = recipe_with("online")
    model = SpeechModel(recipe, load_extractor=False)
    x, spk = dialogue(10, seed=7)
    causal = model.predict_prefixes(x, spk.tolist())
    full = model.predict_features(x, spk.tolist())
    np.testing.assert_allclose(causal[-1], full[-1], atol=1e-5)
    session = Session(model)
    for k in range(len(x)):
        p = session.add_features(x[k], int(spk[k]))
        np.testing.assert_allclose(p.probabilities, causal[k], atol=1e-5)


def test_the_dialogue_normalizer_module_scripts():
    """The exported normaliser is plain tensor code: TorchScript can script it too."""
    mod = DialogueNormalizer("online", 1.0, torch.zeros(3), torch.ones(3), 2)
    scripted = torch.jit.script(mod)
    x = torch.randn(1, 6, 3)
    s = torch.tensor([[0, 1, 0, 0, 1, 1]])
    torch.testing.assert_close(scripted(x, s), mod(x, s))


def test_named_speakers_are_one_person_across_dialogues(tmp_path):
    """MELD's names (Dialogue.persons): the synthetic MELD corpus names its people, the
    native format keeps them, and speaker pools follow the person, not the slot."""
    from bridging.data.datamodule import IEMOCAPDataModule
    from bridging.data.formats.native import read_native, write_native
    from bridging.data.synthetic import synthesize

    corpus = synthesize(preset="meld", label_set="meld_7", seed=0)
    d = corpus.splits["train"][0]
    assert d.persons is not None and len(d.persons) == len(d)
    assert actor_keys(d.id, d.speakers, corpus.speaker_names, d.persons) == d.persons
    # the same slot is the same person within a dialogue
    assert all(
        len({p for p, s in zip(x.persons, x.speakers) if s == slot}) == 1
        for x in corpus.splits["train"][:50]
        for slot in set(x.speakers.tolist())
    )
    write_native(corpus, tmp_path / "meld")
    back = read_native(tmp_path / "meld")
    assert [x.persons for x in back.splits["test"]] == [x.persons for x in corpus.splits["test"]]
    assert back.fingerprint() == corpus.fingerprint()
    dm = IEMOCAPDataModule(
        corpus=back, label_set="meld_7", modalities=["a"], normalize="speaker", max_speakers=9
    )
    dm.setup()
    test = dm.split("test")
    main = [n for n in test.actor_names if n.startswith("main")]
    assert len(main) == 6  # the six main characters, each pooled over every test dialogue
    assert sum(1 for d in dm.corpus.splits["test"] if "main0" in d.persons) > 10


def test_a_native_folder_with_bad_speaker_names_is_refused(tmp_path):
    from bridging.data.formats.native import META_FILE, read_native, write_native
    from bridging.data.synthetic import synthesize

    corpus = synthesize(preset="meld", label_set="meld_7", seed=0, n_dialogues=40)
    write_native(corpus, tmp_path / "c")
    meta_path = tmp_path / "c" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["splits"]["test"]["persons"][0] = meta["splits"]["test"]["persons"][0][:-1]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="persons: expected one list of speaker names"):
        read_native(tmp_path / "c")


def test_a_student_refuses_a_teacher_that_has_seen_its_test_session(tmp_path, capsys):
    """A loso fold-1 teacher trained on session 2: a fold-2 student is refused (issue 29's
    overlap rule, for the teacher a student distils from)."""
    from bridging.cli.train import main

    teacher = tmp_path / "teacher"
    loso = ["data.protocol=loso", "data.fold=1"]
    args = [*TINY, "experiment=teacher", "trainer.max_epochs=1", *loso]
    assert cli(main, *args, f"hydra.run.dir={teacher}") == 0
    capsys.readouterr()
    ckpt = teacher / "checkpoints" / "best.ckpt"
    student = [
        *TINY,
        "experiment=student_kd",
        "trainer.max_epochs=1",
        f"recipe.teacher.ckpt_path={ckpt}",
    ]
    out = tmp_path / "student"
    code = cli(main, *student, "data.protocol=loso", "data.fold=2", f"hydra.run.dir={out}")
    lines = err_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(
        f"bridging-train: error: teacher {ckpt}: recipe.teacher.ckpt_path: this student's test "
        "split holds "
    )
    assert "loso fold 1" in lines[0] and "e.g. Ses02" in lines[0]
    assert not (out / "metrics.json").exists()
    # its own fold is accepted
    code = cli(main, *student, *loso, f"hydra.run.dir={tmp_path / 'ok'}")
    assert code == 0, err_lines(capsys)
