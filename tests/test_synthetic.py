"""The calibrated synthetic corpus: its generative rules, and its statistics against the
IEMOCAP facts it is calibrated to (docs/synthetic.md), within the stated bands."""

import json

import numpy as np
import pytest

from bridging.cli.data import main as data_main
from bridging.data.records import LABEL_SETS
from bridging.data.synthetic import CorpusParams, preset_params, synthesize
from bridging.data.synthetic import calibration as cal
from bridging.data.synthetic.iemocap import _modality_affect, majority_vote
from bridging.data.synthetic.legacy import synthesize_legacy
from bridging.data.validate import validate_corpus

SMALL = {"a": 6, "t": 10, "v": 8}


def test_majority_vote_matches_a_slow_reference():
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 6, size=(4000, 4))
    n_ann = np.where(rng.random(4000) < 0.5, 4, 3)
    label, unanimous = majority_vote(votes, n_ann)
    for i in range(len(votes)):
        v = list(votes[i, : n_ann[i]])
        counts = {c: v.count(c) for c in set(v)}
        top = max(counts.values())
        winners = [c for c, k in counts.items() if k == top]
        expected = winners[0] if top >= 2 and len(winners) == 1 else -1
        assert label[i] == expected
        assert unanimous[i] == (len(counts) == 1)
    # a 2-2 tie of four annotators has no majority; 2-1-1 has one
    lab, _ = majority_vote(np.array([[1, 1, 2, 2], [1, 1, 2, 3]]), np.array([4, 4]))
    assert lab.tolist() == [-1, 1]


def test_corpus_is_iemocap_shaped_with_latent_and_unseen_test_actors():
    c = synthesize(label_set="iemocap_4")
    assert [len(c.splits[s]) for s in ("train", "dev", "test")] == [108, 12, 31]
    assert c.label_names == LABEL_SETS["iemocap_4"]
    validate_corpus(c, ["a", "t", "v"])
    for dialogues in c.splits.values():
        for d in dialogues:
            assert d.latent is not None and d.latent.shape == d.labels.shape
            assert d.latent.min() >= 0 and d.latent.max() < 6
    # test = session 5 only: its two actors never appear in training
    assert all(d.id.startswith("Ses05") for d in c.splits["test"])
    assert not any(d.id.startswith("Ses05") for s in ("train", "dev") for d in c.splits[s])
    n4 = sum(len(d) for s in c.splits.values() for d in s)
    assert 3800 < n4 < 5600  # IEMOCAP 4-way: 4,490 (metadata) / 4,543 (feature files)
    # the latent agrees with the stored label often, but not always (annotation noise)
    gold = np.concatenate([d.labels for d in c.splits["test"]])
    latent = np.concatenate([d.latent for d in c.splits["test"]])
    assert 0.5 < float((gold == latent).mean()) < 0.95
    ceiling = cal.annotation_ceiling(c)
    assert ceiling is not None and 0.5 < ceiling["wf1"] < 0.98


def test_four_way_is_six_way_minus_exc_fru_with_latent_kept_aligned():
    c6 = synthesize(n_dialogues=30, label_set="iemocap_6", feature_sizes=SMALL, seed=4)
    c4 = synthesize(n_dialogues=30, label_set="iemocap_4", feature_sizes=SMALL, seed=4)
    for split in ("train", "test"):
        for d6, d4 in zip(c6.splits[split], c4.splits[split]):
            if d6.id != d4.id:
                continue  # redrawn (no 4-way label): compared elsewhere
            keep = d6.labels < 4
            np.testing.assert_array_equal(d6.labels[keep], d4.labels)
            np.testing.assert_array_equal(d6.latent[keep], d4.latent)
            np.testing.assert_array_equal(d6.features["a"][keep], d4.features["a"])


def test_seeded_and_legacy_preset_reachable():
    a = synthesize(n_dialogues=12, feature_sizes=SMALL, seed=3)
    b = synthesize(n_dialogues=12, feature_sizes=SMALL, seed=3)
    np.testing.assert_array_equal(
        a.splits["train"][0].features["t"], b.splits["train"][0].features["t"]
    )
    old = synthesize(n_dialogues=12, feature_sizes=SMALL, seed=3, preset="legacy")
    ref = synthesize_legacy(n_dialogues=12, feature_sizes=SMALL, seed=3)
    np.testing.assert_array_equal(
        old.splits["test"][0].features["v"], ref.splits["test"][0].features["v"]
    )
    assert old.splits["test"][0].latent is None
    with pytest.raises(ValueError, match="unknown synthetic parameters"):
        synthesize(n_dialogues=12, feature_sizes=SMALL, bogus=1)
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        synthesize(n_dialogues=12, feature_sizes=SMALL, preset="nope")


def test_iemocap_shape_resolves_its_defaults_and_checks_them():
    from bridging.data.synthetic import IEMOCAP_DEFAULTS, IemocapShape

    full = IemocapShape()
    assert full.feature_sizes == {"a": 100, "t": 768, "v": 512}
    assert (full.n_dialogues, full.n_test_dialogues, full.n_train, full.n_dev) == (151, 31, 120, 12)
    assert IEMOCAP_DEFAULTS == {
        "n_dialogues": 151,
        "min_len": 8,
        "max_len": 110,
        "mean_len": 49.2,
        "label_set": "iemocap_6",
        "dev_fraction": 0.1,
    }
    small = IemocapShape(n_dialogues=20, feature_sizes={"a": 3})
    assert small.n_test_dialogues == round(20 * 31 / 151) and small.feature_sizes == {"a": 3}
    lengths = small.lengths(np.random.default_rng(0))
    assert len(lengths) == 20 and lengths.min() >= 8 and lengths.max() <= 110
    with pytest.raises(ValueError, match=r"need 1 <= n_test_dialogues \(20\) < n_dialogues"):
        IemocapShape(n_dialogues=20, n_test_dialogues=20)
    with pytest.raises(ValueError, match="unknown label set"):
        IemocapShape(label_set="iemocap_5")


def test_legacy_knobs_are_checked_and_partial_dicts_update_the_defaults():
    from bridging.data.synthetic.legacy import DEFAULT_INFORMATIVENESS, LegacyParams

    c = synthesize(n_dialogues=8, feature_sizes=SMALL, preset="legacy", informativeness={"a": 2})
    info = {m: e["informativeness"] for m, e in c.extractors.items()}
    assert info == {**DEFAULT_INFORMATIVENESS, "a": 2}
    # a knob given by keyword equals the same knob given in the params object
    kw = synthesize_legacy(n_dialogues=8, feature_sizes=SMALL, switch_prob=0.3, seed=1)
    obj = synthesize_legacy(
        params=LegacyParams(switch_prob=0.3), n_dialogues=8, feature_sizes=SMALL, seed=1
    )
    for a, b in zip(kw.splits["train"], obj.splits["train"]):
        np.testing.assert_array_equal(a.speakers, b.speakers)
        np.testing.assert_array_equal(a.features["t"], b.features["t"])
    with pytest.raises(ValueError, match=r"unknown synthetic parameters \['redundancy'\]"):
        synthesize(n_dialogues=8, feature_sizes=SMALL, preset="legacy", redundancy=0.5)
    with pytest.raises(TypeError, match="positional"):
        synthesize_legacy(12)  # the shape is given by keyword (it was once positional)
    with pytest.raises(ValueError, match="class_counts needs 6 values"):
        synthesize_legacy(n_dialogues=8, feature_sizes=SMALL, class_counts=(1, 2, 3))


def test_meld_shares_the_feature_knobs_of_the_calibrated_generator():
    from bridging.data.synthetic import synthesize_meld
    from bridging.data.synthetic.common import FeatureParams
    from bridging.data.synthetic.meld import MeldParams

    shared = set(FeatureParams.__dataclass_fields__)
    assert shared <= set(MeldParams.__dataclass_fields__)
    assert shared <= set(CorpusParams.__dataclass_fields__)
    sizes = {"a": 5, "t": 6, "v": 4}
    base = synthesize_meld(n_dialogues=12, feature_sizes=sizes, seed=4)
    hetero = synthesize_meld(n_dialogues=12, feature_sizes=sizes, seed=4, audio_hetero=0.6)
    # the same draws: only the audio noise's scale changes
    for a, b in zip(base.splits["train"], hetero.splits["train"]):
        np.testing.assert_array_equal(a.features["t"], b.features["t"])
        np.testing.assert_array_equal(a.features["v"], b.features["v"])
    a = np.concatenate([d.features["a"] for d in base.splits["train"]])
    b = np.concatenate([d.features["a"] for d in hetero.splits["train"]])
    assert b.std() > a.std()


def test_redundancy_knob_sets_the_shared_part_of_the_affect():
    rng = np.random.default_rng(0)
    latent = rng.integers(0, 6, 20000)
    deviation = 0.4 * rng.standard_normal((20000, 2))
    for rho in (0.0, 0.5, 1.0):
        params = CorpusParams(spread=(0.4,) * 6, redundancy=rho)
        za = _modality_affect(rng, "a", latent, deviation, params)
        zt = _modality_affect(rng, "t", latent, deviation, params)
        from bridging.data.synthetic.common import AFFECT

        da, dt = za - AFFECT[latent], zt - AFFECT[latent]
        corr = np.corrcoef(da[:, 1], dt[:, 1])[0, 1]
        assert abs(corr - rho) < 0.03
    assert preset_params("independent").redundancy == 0.0
    assert preset_params("iemocap").redundancy > 0


def test_features_off_the_zero_vector_and_audio_speaker_dependent():
    c = synthesize(label_set="iemocap_4", seed=1)
    train = c.splits["train"]
    for m in ("a", "t", "v"):
        x = np.concatenate([d.features[m] for d in train])
        # a zeroed modality is far from the data: the mean is not near zero
        assert np.abs(x.mean(0)).mean() > 0.4
    # per-actor audio baselines: the mean audio vector differs between the speakers of a
    # session beyond what noise explains, and far more than without the actor terms

    def speaker_gap(corpus):
        dialogues = corpus.splits["train"]
        first = dialogues[0].id[:5]
        xa = np.concatenate([d.features["a"] for d in dialogues if d.id.startswith(first)])
        spk = np.concatenate([d.speakers for d in dialogues if d.id.startswith(first)])
        gap = np.linalg.norm(xa[spk == 0].mean(0) - xa[spk == 1].mean(0))
        noise = np.sqrt(xa.shape[1] * (1 / (spk == 0).sum() + 1 / (spk == 1).sum())) * 1.5
        return gap, noise

    gap, noise = speaker_gap(c)
    assert gap > 1.5 * noise
    flat, _ = speaker_gap(synthesize(label_set="iemocap_4", seed=1, audio_speaker_sd=0.0))
    assert gap > 1.5 * flat


def test_heteroscedastic_audio_noise_grows_with_arousal():
    from bridging.data.synthetic.common import audio_features

    rng = np.random.default_rng(0)
    n = 6000
    onehot = np.eye(6)[np.full(n, 1)]
    params = CorpusParams()
    low = np.tile([[-0.9, -1.0]], (n, 1))
    high = np.tile([[-0.9, 1.0]], (n, 1))
    actor = np.zeros(n, dtype=np.int64)
    xl = audio_features(np.random.default_rng(1), 40, onehot, low, actor, 1, params)
    xh = audio_features(np.random.default_rng(1), 40, onehot, high, actor, 1, params)
    assert xh.std(0).mean() > 1.2 * xl.std(0).mean()
    # without heteroscedasticity (MELD's default) the noise does not depend on the arousal
    flat = params.with_overrides(audio_hetero=0.0)
    xl = audio_features(np.random.default_rng(1), 40, onehot, low, actor, 1, flat)
    xh = audio_features(np.random.default_rng(1), 40, onehot, high, actor, 1, flat)
    assert abs(xh.std(0).mean() / xl.std(0).mean() - 1.0) < 0.05
    del rng


def test_calibration_statistics_within_the_stated_bands():
    facts = cal.calibration_facts(preset_params("iemocap"), probe=False)
    checked = [f for f in facts if f.ok is not None]
    assert len(checked) >= 14
    outside = [(f.name, f.real, round(f.measured, 3)) for f in checked if not f.ok]
    assert not outside, outside
    names = {f.name for f in facts}
    assert "annotation ceiling: latent vs stored, test wF1 %" in names


def test_probe_learns_text_better_than_chance_and_is_seeded():
    c = synthesize(n_dialogues=40, label_set="iemocap_4", seed=2)
    r1 = cal.probe_fit(c, ["t"], seed=0, steps=60)
    r2 = cal.probe_fit(c, ["t"], seed=0, steps=60)
    assert r1 == r2
    assert r1["test_wf1"] > 0.45  # chance (majority class) is about 0.2 wF1


def test_calibrate_cli_prints_the_table(capsys, tmp_path):
    out = tmp_path / "synthetic.md"
    assert data_main(["calibrate", "--no-probe", "--json", "--markdown", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["statistic"]: r for r in rows}
    assert by["no majority label (all utterances)"]["real"] == 0.25
    assert by["unanimous, ang"]["within"] is True
    text = out.read_text()
    assert "| statistic | real | generated |" in text and "bridging-data calibrate" in text
    from bridging.runs.precision import cpu_isa

    assert f"(preset iemocap, seed 0; on a CPU with {cpu_isa()})." in text


# -- issue 28: the actor probe, the old corpus as a preset, COGMEN in the loop --------------


def test_actor_probe_reads_the_actor_terms():
    """Actors from one utterance's audio: perfect when each actor's baseline dwarfs the
    noise, at chance without actor terms, in between for the default corpus (above the
    floor the docs state as an assumption)."""
    loud = synthesize(label_set="iemocap_4", audio_speaker_sd=2.0)
    assert cal.actor_probe(loud) > 99.0
    none = synthesize(
        label_set="iemocap_4", audio_speaker_sd=0.0, audio_gain_sd=0.0, audio_rest_sd=0.0
    )
    assert cal.actor_probe(none) < 16.0  # 10 actors: chance 10%
    default = cal.actor_probe(synthesize(label_set="iemocap_4"))
    assert cal.ACTOR_FLOOR <= default < 100.0


def test_actor_probe_equals_a_slow_reference():
    """The probe's split and classes written out: even-numbered dialogues of each session
    fit, odd-numbered ones test; the class is session x speaker."""
    import torch

    from bridging.utils.logreg import fit_logreg

    c = synthesize(n_dialogues=30, label_set="iemocap_4", seed=3, feature_sizes=SMALL)
    seen: dict[str, int] = {}
    fit_x, fit_y, test_x, test_y = [], [], [], []
    for split in ("train", "dev", "test"):
        for d in c.splits[split]:
            session = int(d.id[4])
            k = seen.get(d.id[:5], 0)
            seen[d.id[:5]] = k + 1
            for i in range(len(d)):
                (fit_x if k % 2 == 0 else test_x).append(d.features["a"][i])
                (fit_y if k % 2 == 0 else test_y).append(2 * (session - 1) + int(d.speakers[i]))
    x, xt = (torch.tensor(np.array(v), dtype=torch.float64) for v in (fit_x, test_x))
    mu, sd = x.mean(0), x.std(0)
    w, b = fit_logreg((x - mu) / sd, torch.tensor(fit_y), max(fit_y + test_y) + 1, 1e-2)
    want = 100 * float(
        ((((xt - mu) / sd) @ w + b).argmax(-1) == torch.tensor(test_y)).double().mean()
    )
    assert cal.actor_probe(c) == pytest.approx(want, abs=1e-9)


def test_the_old_default_corpus_stays_reachable_as_iemocap_v1():
    """iemocap_v1 is the default corpus until 2026-12-07, value for value, so earlier
    figures can be reproduced; the default is no longer it."""
    from bridging.data.synthetic.iemocap import IEMOCAP_V1

    old = {
        "strength": {"a": 0.92, "t": 5.5, "v": 1.19},
        "audio_speaker_sd": 0.8,
        "audio_gain_sd": 0.3,
        "audio_rest_sd": 0.3,
        "audio_hetero": 0.6,
        "video_speaker_sd": 0.6,
    }
    assert IEMOCAP_V1 == old
    v1 = preset_params("iemocap_v1")
    for k, v in old.items():
        assert getattr(v1, k) == v
    explicit = synthesize(label_set="iemocap_4", n_dialogues=20, **old)
    preset = synthesize(label_set="iemocap_4", n_dialogues=20, preset="iemocap_v1")
    assert preset.fingerprint() == explicit.fingerprint()
    assert preset.extractors["a"]["preset"] == "iemocap_v1"
    default = synthesize(label_set="iemocap_4", n_dialogues=20)
    assert default.fingerprint() != preset.fingerprint()


def test_corpus_fingerprint_follows_the_content():
    a = synthesize(n_dialogues=12, label_set="iemocap_4", feature_sizes=SMALL)
    b = synthesize(n_dialogues=12, label_set="iemocap_4", feature_sizes=SMALL)
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    b.splits["test"][0].features["a"][0, 0] += 1e-3
    assert a.fingerprint() != b.fingerprint()
    c = synthesize(n_dialogues=12, label_set="iemocap_4", feature_sizes=SMALL)
    c.splits["dev"], c.splits["train"] = c.splits["train"], c.splits["dev"]
    assert c.fingerprint() != a.fingerprint()  # the split a dialogue is in counts
    d = synthesize(n_dialogues=12, label_set="iemocap_4", feature_sizes=SMALL)
    d.splits["train"][0].labels[0] = (d.splits["train"][0].labels[0] + 1) % 4
    assert d.fingerprint() != a.fingerprint()


def test_cogmen_overrides_generate_the_same_corpus(compose_cfg):
    """The COGMEN instrument passes a candidate's parameters to data=synthetic as Hydra
    overrides: the run's corpus is the one synthesize() makes from those parameters."""
    from bridging.runs.calibrate import corpus_overrides
    from bridging.runs.train import build_datamodule

    params = preset_params("iemocap").with_overrides(
        audio_speaker_sd=0.123, strength={"a": 0.77}, prior=(0.1, 0.1, 0.3, 0.1, 0.2, 0.2)
    )
    overrides = corpus_overrides("iemocap", params)
    assert "+data.synthetic.audio_speaker_sd=0.123" in overrides
    assert corpus_overrides("iemocap", preset_params("iemocap")) == [
        "+data.synthetic.preset=iemocap"
    ]
    cfg = compose_cfg(["data.synthetic.n_dialogues=20", *overrides])
    dm = build_datamodule(cfg)
    dm.setup()
    want = synthesize(n_dialogues=20, label_set="iemocap_4", **{
        "audio_speaker_sd": 0.123, "strength": {"a": 0.77},
        "prior": (0.1, 0.1, 0.3, 0.1, 0.2, 0.2),
    })  # fmt: skip
    assert dm.fingerprint == want.fingerprint()
    summary = dm.summary()
    assert summary["fingerprint"] == want.fingerprint()
    assert summary["synthetic"]["preset"] == "iemocap"
    assert summary["synthetic"]["audio_speaker_sd"] == 0.123


def test_the_cogmen_instrument_runs_on_a_tiny_corpus_and_resumes(tmp_path, monkeypatch):
    """bridging-data calibrate --cogmen on a tiny corpus (1 epoch, small model): a row per
    subset with every seed, the table in the doc; a rerun trains nothing (read back); a
    killed run's dir is replaced."""
    import bridging.runs.calibrate as cc

    tiny = (
        "data.synthetic.n_dialogues=16",
        "+data.synthetic.max_len=12",
        "model.seqcontext_nlayer=1",
        "model.gnn_nheads=1",
        "trainer.accelerator=cpu",
    )
    out = tmp_path / "cal"
    params = preset_params("iemocap").with_overrides(audio_speaker_sd=0.2)
    rows = cc.measure(out, params=params, subsets=("a", "v"), seeds=(0, 1), epochs=1,
                      jobs=2, extra=tiny, log=lambda m: None)  # fmt: skip
    assert set(rows) == {"a", "v"}
    for sub, row in rows.items():
        assert set(row.wf1) == {0, 1} and all(0 <= v <= 100 for v in row.wf1.values())
        d = row.as_dict()
        assert d["real"] == cal.COGMEN_ABLATION[sub] and d["range"] == pytest.approx(
            row.range, abs=0.01
        )
        assert d["within"] == (abs(row.mean - row.real) <= 4 and row.range <= 8)
    assert "baseline_within" in rows["a"].as_dict()
    root = next(p for p in out.iterdir() if p.is_dir())
    metrics = json.loads((root / "a" / "seed0" / "metrics.json").read_text())
    assert metrics["experiment"] == "audio_only" and metrics["modalities"] == ["a"]
    assert metrics["data"]["synthetic"]["audio_speaker_sd"] == 0.2
    import torch

    from bridging.runs.precision import cpu_isa

    # where it trained: float32 kernels of two ISAs train the same seed to other figures
    assert metrics["machine"] == {"device": "cpu", "cpu_isa": cpu_isa(), "torch": torch.__version__}
    assert rows["a"].as_dict()["trained_on"] == [cpu_isa()]
    assert not (root / "a" / "seed0" / "checkpoints").exists()  # the row needs metrics only
    # a killed run (a dir without metrics.json) is trained again from scratch
    (root / "a" / "seed2").mkdir()
    (root / "a" / "seed2" / "config.yaml").write_text("killed")
    more = cc.measure(out, params=params, subsets=("a",), seeds=(0, 1, 2), epochs=1,
                      jobs=1, extra=tiny, log=lambda m: None)  # fmt: skip
    assert set(more["a"].wf1) == {0, 1, 2} and (root / "a" / "seed2" / "metrics.json").exists()
    # a rerun reads every run back: no training
    monkeypatch.setattr(cc, "_run", lambda *a, **k: pytest.fail("trained again"))
    again = cc.measure(out, params=params, subsets=("a", "v"), seeds=(0, 1), epochs=1,
                       jobs=2, extra=tiny, log=lambda m: None)  # fmt: skip
    assert {k: r.wf1 for k, r in again.items()} == {k: r.wf1 for k, r in rows.items()}
    md = cal.cogmen_table([r.as_dict() for r in again.values()])
    assert "| a | 63.58 |" in md and "| v | 43.85 |" in md
    assert md.splitlines()[2].endswith(f"| `experiment=audio_only` | {cpu_isa()} |")
    # a run written before metrics.json named its machine reads as such
    path = root / "v" / "seed1" / "metrics.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items()
                                if k != "machine"}))  # fmt: skip
    old = cc.measure(out, params=params, subsets=("v",), seeds=(0, 1), epochs=1,
                     jobs=1, extra=tiny, log=lambda m: None)  # fmt: skip
    assert old["v"].as_dict()["trained_on"] == sorted([cpu_isa(), "not recorded"])


def test_probe_rows_are_the_check_only_where_cogmen_did_not_measure():
    """A probe row whose subset has a COGMEN row carries no band (the COGMEN row is the
    check) and the doc states probe minus COGMEN; the other probe rows keep the ±6 band."""
    table = {"a": 53.0, "t": 79.0, "v": 40.0, "at": 79.5, "av": 58.0, "tv": 80.0, "atv": 78.0}
    facts = cal.probe_facts(table, checked_by_cogmen=["a", "av"])
    by = {f.name.rsplit(", ", 1)[1]: f for f in facts}
    assert list(by) == list(cal.COGMEN_ABLATION)
    assert by["a"].band is None and by["a"].ok is None and "stand-in" in by["a"].source
    assert by["av"].ok is None and by["a"].real == 63.58 and by["a"].measured == 53.0
    assert by["t"].band == 6.0 and by["t"].ok is True  # |79 - 81.55| <= 6
    assert by["atv"].ok is False  # |78 - 84.50| > 6, and no COGMEN row checks it
    # without COGMEN rows every probe row is checked within its band
    assert [f.ok for f in cal.probe_facts(table)] == [
        abs(table[s] - r) <= 6 for s, r in cal.COGMEN_ABLATION.items()
    ]
    cogmen = [
        {"subset": "a", "real": 63.58, "mean": 64.68, "min": 63.15, "max": 66.43, "range": 3.28,
         "seeds": {"0": 63.15, "1": 64.47, "2": 66.43}, "settings": "experiment=audio_only",
         "band": 4.0, "within": True, "baseline_within": True},
        {"subset": "av", "real": 64.48, "mean": 64.12, "min": 63.53, "max": 64.55, "range": 1.01,
         "seeds": {"0": 64.29, "1": 63.53, "2": 64.55}, "settings": "experiment=teacher",
         "band": 4.0, "within": True},
    ]  # fmt: skip
    md = cal.markdown(facts, preset_params("iemocap"), "bridging-data calibrate --cogmen", cogmen)
    assert "Probe minus bridging's COGMEN, wF1 points: a -11.68, av -6.12." in md
    assert "Outside the band: probe test wF1 %, atv, left as measured." in md
    assert "| probe test wF1 %, a | 63.58 | 53.00 |  |  |" in md
