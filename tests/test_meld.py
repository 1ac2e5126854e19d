"""MELD (docs/meld.md): the feature pickles' reader and writer, the dev split rules, the
MELD-shaped synthetic preset, inspect's counts, the 9-speaker graph relations and the RGCN
basis decomposition, and the five MELD experiment presets trained on a tiny MELD corpus."""

from __future__ import annotations

import collections
import json
import os
import pickle
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bridging.cli.data import main as data_main
from bridging.data.datamodule import IEMOCAPDataModule
from bridging.data.formats.dialoguernn import write_dialoguernn
from bridging.data.formats.meld import (
    official_ids_apply,
    read_meld,
    split_ids,
    write_meld,
)
from bridging.data.formats.native import read_native, write_native
from bridging.data.formats.sources import detect_format, load_corpus
from bridging.data.records import LABEL_SETS, Corpus, DataError
from bridging.data.synthetic import generate, preset_params, synthesize
from bridging.data.synthetic.meld import EMOTION_COUNTS, SPLIT_DIALOGUES, SPLIT_UTTERANCES
from bridging.models.cogmen import COGMEN
from bridging.models.gnn import GNN
from bridging.models.graph import build_graph, n_relations, relation_types, window_edges
from test_data_cli import expected_counts

SMALL = {
    "preset": "meld",
    "n_dialogues": 30,
    "seed": 3,
    "feature_sizes": {"a": 6, "t": 10},
    "max_len": 12,
}
EMOTIONS = LABEL_SETS["meld_7"]


def meld_corpus(**kw) -> Corpus:
    return synthesize(**{**SMALL, **kw})


@pytest.fixture
def meld_file(tmp_path):
    corpus = meld_corpus()
    path = tmp_path / "MELD_features_raw.pkl"
    write_meld(corpus, path)
    return corpus, path


def raw(path):
    with open(path, "rb") as fh:
        return list(pickle.load(fh))


def rewrite(path, obj, name="bad.pkl"):
    out = Path(path).with_name(name)
    out.write_bytes(pickle.dumps(tuple(obj), protocol=4))
    return out


# -- the format --------------------------------------------------------------------------------


def test_writer_layout_is_the_dialoguernn_9_tuple(meld_file):
    corpus, path = meld_file
    obj = raw(path)
    assert len(obj) == 9
    ids, spk, emo, text, audio, sent, train_vid, test_vid, senti = obj
    train = corpus.splits["train"] + corpus.splits["dev"]
    assert train_vid == [int(d.id) for d in train]  # train then dev, MELD's numbering
    assert test_vid == [int(d.id) for d in corpus.splits["test"]]
    assert all(isinstance(v, int) for v in train_vid + test_vid)
    assert min(int(d.id) for d in corpus.splits["dev"]) == 1039
    assert min(test_vid) == 1153
    d = corpus.splits["test"][0]
    vid = int(d.id)
    assert np.asarray(spk[vid]).shape == (len(d), 9)
    assert np.argmax(spk[vid], axis=1).tolist() == d.speakers.tolist()
    assert emo[vid] == d.labels.tolist() and senti[vid] == d.other_labels["meld_3"].tolist()
    assert np.array_equal(audio[vid], d.features["a"]) and np.array_equal(
        text[vid], d.features["t"]
    )
    assert sent[vid] == d.sentences and ids[vid] == list(range(len(d)))


@pytest.mark.parametrize("label_set", ["meld_7", "meld_3"])
def test_round_trip_both_label_sets(meld_file, label_set):
    corpus, path = meld_file
    assert detect_format(path) == "meld"
    back = load_corpus(path, label_set=label_set)
    assert back.source_format == "meld" and back.label_set == label_set
    assert back.label_names == LABEL_SETS[label_set]
    assert back.n_speakers == 9 and back.speaker_names == tuple(f"s{k}" for k in range(9))
    assert back.split_rule.startswith("official")
    other = "meld_3" if label_set == "meld_7" else "meld_7"
    for split in ("train", "dev", "test"):
        assert [d.id for d in back.splits[split]] == [d.id for d in corpus.splits[split]]
        for a, b in zip(corpus.splits[split], back.splits[split]):
            want = a.labels if label_set == "meld_7" else a.other_labels["meld_3"]
            assert np.array_equal(b.labels, want)
            assert np.array_equal(
                b.other_labels[other], a.labels if other == "meld_7" else a.other_labels["meld_3"]
            )
            assert np.array_equal(b.speakers, a.speakers) and b.sentences == a.sentences
            for m in ("a", "t"):
                assert np.array_equal(b.features[m], a.features[m])
    with pytest.raises(DataError, match=r"a MELD file holds meld_7 and meld_3 labels; iemocap_4"):
        load_corpus(path, label_set="iemocap_4")
    # and through bridging's own format, both label sets kept
    native = write_native(back, path.parent / "native")
    again = read_native(native, label_set=other)
    assert again.label_set == other and again.split_rule == back.split_rule
    for a, b in zip(back.splits["test"], again.splits["test"]):
        assert np.array_equal(b.labels, a.other_labels[other])
        assert np.array_equal(b.other_labels[label_set], a.labels)


def test_mmgcn_layout_with_video_gives_emotions_only(tmp_path):
    corpus = meld_corpus(feature_sizes={"a": 6, "t": 10, "v": 4})
    path = tmp_path / "MELD_features_raw1.pkl"
    write_meld(corpus, path, layout="mmgcn")
    obj = raw(path)
    assert len(obj) == 10 and obj[9] == {}
    back = load_corpus(path, label_set=None)
    assert back.source_format == "meld_mmgcn" and back.modalities == ["a", "t", "v"]
    assert back.label_set == "meld_7" and back.splits["dev"]
    for a, b in zip(corpus.splits["train"], back.splits["train"]):
        assert np.array_equal(a.features["v"], b.features["v"])
        assert np.array_equal(a.labels, b.labels) and b.other_labels is None
    with pytest.raises(DataError, match=r"MMGCN-style MELD file .*meld_3 is not read"):
        load_corpus(path, label_set="meld_3")


def test_iemocap_files_are_not_taken_for_meld(tmp_path):
    corpus = synthesize(n_dialogues=12, feature_sizes={"a": 4, "v": 3}, label_set="iemocap_6")
    path = tmp_path / "IEMOCAP_features.pkl"
    write_dialoguernn(corpus, path)
    assert detect_format(path) == "dialoguernn"
    with pytest.raises(DataError, match=r"not a MELD file: expected the 9-tuple \(videoIDs,"):
        read_meld(path)  # the reader refuses what is not MELD
    with pytest.raises(DataError, match=r"holds iemocap_6 labels; meld_7 was asked for"):
        load_corpus(path, label_set="meld_7")
    with pytest.raises(DataError, match=r"dev_split=official applies to MELD files"):
        load_corpus(path, label_set="iemocap_6", dev_split="official")


# -- the dev split -----------------------------------------------------------------------------


def test_dev_split_rules():
    train = list(range(0, 20)) + list(range(1039, 1042))
    got, rule = split_ids(train, [1153, 1154], "auto", where="f", field="trainVid")
    assert got == {"train": list(range(20)), "dev": [1039, 1040, 1041], "test": [1153, 1154]}
    assert rule.startswith("official")
    got, rule = split_ids(train, [1153], "first_fraction", where="f", field="trainVid")
    assert got["dev"] == [0, 1] and got["train"] == train[2:] and rule.startswith("first_frac")
    # ids that do not follow MELD's numbering: auto falls back, official is refused
    for ids in (list(range(30)), [str(v) for v in train], list(range(1039, 1100)), [5, 1200]):
        assert not official_ids_apply(ids)
        got, rule = split_ids(ids, [], "auto", where="f", field="trainVid")
        assert got["dev"] == ids[: int(0.1 * len(ids))] and rule.startswith("first_fraction")
        with pytest.raises(DataError, match=r"f: trainVid: dev_split=official needs MELD's"):
            split_ids(ids, [], "official", where="f", field="trainVid")
    with pytest.raises(DataError, match="unknown dev_split 'random'"):
        split_ids(train, [], "random", where="f", field="trainVid")


def test_writer_orders_trainvid_for_the_first_fraction_rule(tmp_path):
    corpus = meld_corpus(n_dialogues=26, n_test_dialogues=4)  # 20 train + 2 dev
    assert len(corpus.splits["dev"]) == 2
    renamed = {
        s: [replace(d, id=f"x{s}{k}") for k, d in enumerate(ds)] for s, ds in corpus.splits.items()
    }
    odd = replace(corpus, splits=renamed)
    path = tmp_path / "odd.pkl"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 2 == int(0.1 * 22): no warning
        write_meld(odd, path)
    back = load_corpus(path, label_set="meld_7")
    assert [d.id for d in back.splits["dev"]] == ["xdev0", "xdev1"]
    assert back.split_rule.startswith("first_fraction")
    # 3 dev dialogues of 22: neither MELD's ids nor the first 10% (2) give them back
    three = replace(
        odd,
        splits={
            **renamed,
            "train": renamed["train"][1:],
            "dev": renamed["dev"] + renamed["train"][:1],
        },
    )
    with pytest.warns(UserWarning, match="takes another dev split"):
        write_meld(three, tmp_path / "three.pkl")


def test_datamodule_dev_split_option_and_facts(meld_file):
    corpus, path = meld_file
    dm = IEMOCAPDataModule(path=str(path), label_set="meld_7", modalities=["a", "t"])
    dm.setup()
    assert dm.facts.n_speakers == 9 and dm.facts.feature_sizes == {"a": 6, "t": 10}
    assert dm.facts.label_names == list(EMOTIONS)
    assert dm.split("dev").ids == [d.id for d in corpus.splits["dev"]]
    ff = IEMOCAPDataModule(
        path=str(path), label_set="meld_3", modalities=["a"], dev_split="first_fraction"
    )
    trainvid = corpus.splits["train"] + corpus.splits["dev"]
    assert ff.split("dev").ids == [d.id for d in trainvid[: int(0.1 * len(trainvid))]]
    assert ff.facts.n_classes == 3
    with pytest.raises(DataError, match="applies to MELD files"):
        IEMOCAPDataModule(
            path=None, label_set="meld_7", dev_split="official", synthetic=dict(SMALL)
        ).setup()


# -- bad input: file, dialogue and field named -------------------------------------------------


def _first(obj, field: int):
    """The first training dialogue with at least two utterances (what the cases edit)."""
    del field  # every case edits the same dialogue, in the field it names
    return next(v for v in obj[6] if len(obj[2][v]) >= 2)


def _set_speaker(obj, row, k=0):
    vid = _first(obj, 1)
    obj[1][vid][k] = row
    return vid


CASES = {
    "two_ones": (
        lambda o: _set_speaker(o, [1.0, 1.0] + [0.0] * 7),
        r"videoSpeakers: utterance 0 is \[1, 1, 0, 0, 0, 0, 0, 0, 0\], expected a one-hot",
    ),
    "fraction": (
        lambda o: _set_speaker(o, [0.5] + [0.0] * 8),
        r"videoSpeakers: utterance 0 is \[0.5, 0, .*expected a one-hot vector",
    ),
    "zeros": (
        lambda o: _set_speaker(o, [0.0] * 9),
        r"videoSpeakers: utterance 0 is .*a single 1, the rest 0",
    ),
    "width": (
        lambda o: _set_speaker(o, [1.0] + [0.0] * 11, k=1),
        r"videoSpeakers: utterance 1 is 12 wide, expected 9",
    ),
    "label": (
        lambda o: o[2][_first(o, 2)].__setitem__(1, 7),
        r"videoLabelsEmotion: label of utterance 1 is 7, outside meld_7 \(expected 0..6",
    ),
    "sentiment": (
        lambda o: o[8][_first(o, 8)].__setitem__(0, 3),
        r"videoLabelsSentiment: label of utterance 0 is 3, outside meld_3",
    ),
    "float_label": (
        lambda o: o[2][_first(o, 2)].__setitem__(0, 1.5),
        r"videoLabelsEmotion: labels are float64, expected integers",
    ),
    "empty": (
        lambda o: o[2].__setitem__(_first(o, 2), []),
        r"videoLabelsEmotion is empty: expected at least one utterance",
    ),
    "short_speakers": (
        lambda o: o[1][_first(o, 1)].pop(),
        r"videoSpeakers has \d+ entries but videoLabelsEmotion has \d+",
    ),
    "nan": (
        lambda o: o[4][_first(o, 4)].__setitem__((1, 2), np.nan),
        r"videoAudio: utterance 1 has a non-finite feature \(nan at index 2\)",
    ),
    "missing": (lambda o: o[3].pop(_first(o, 3)), r"listed in trainVid but missing from videoText"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_names_file_dialogue_and_field(meld_file, case):
    corpus, path = meld_file
    obj = raw(path)
    mutate, message = CASES[case]
    vid = _first(obj, 2)
    mutate(obj)
    bad = rewrite(path, obj)
    with pytest.raises(DataError) as info:
        load_corpus(bad, label_set="meld_7")
    text = str(info.value)
    assert text.startswith(f"{bad}: split 'train', dialogue '{vid}': "), text
    assert re.search(message, text), text


def test_more_speakers_than_supported_names_the_dialogue(meld_file, capsys):
    corpus, path = meld_file
    ordered = [(s, d) for s in ("train", "dev", "test") for d in corpus.splits[s]]
    most = max(len(np.unique(d.speakers)) for _, d in ordered)
    assert most >= 3
    split, first = next((s, d) for s, d in ordered if len(np.unique(d.speakers)) == most)
    with pytest.raises(DataError) as info:
        load_corpus(path, label_set="meld_7", max_speakers=most - 1)
    k = int(np.flatnonzero(first.speakers == most - 1)[0])
    assert str(info.value) == (
        f"{path}: split {split!r}, dialogue {first.id!r}: speakers: utterance {k} is speaker "
        f"{most - 1} of a dialogue with {most} speakers, but at most {most - 1} speakers are "
        f"supported (data.max_speakers={most - 1}: ids 0..{most - 2})"
    )
    # enough: the corpus is sized to it, so is the model
    fits = load_corpus(path, label_set="meld_7", max_speakers=most)
    assert fits.n_speakers == most and len(fits.speaker_names) == most
    dm = IEMOCAPDataModule(path=str(path), label_set="meld_7", modalities=["a"], max_speakers=most)
    assert dm.facts.n_speakers == most
    # the one-line CLI error
    assert data_main(["inspect", str(path), "--max-speakers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bridging-data: error: {path}: split ") and "\n" not in err
    assert "speakers: utterance" in err and "at most 1 speakers are supported" in err


def test_leakage_and_refused_pickles(meld_file, tmp_path):
    corpus, path = meld_file
    obj = raw(path)
    obj[7] = obj[7] + [obj[6][0]]  # a train dialogue also in testVid
    with pytest.raises(DataError, match=r"is in split 'train' \(trainVid\) and in split 'test'"):
        load_corpus(rewrite(path, obj), label_set="meld_7")
    obj = raw(path)
    obj[1] = {k: [os.system] for k in obj[1]}  # a global off the allow-list
    with pytest.raises(DataError, match=r"refused to unpickle posix.system"):
        load_corpus(rewrite(path, obj, "evil.pkl"), label_set="meld_7")


# -- the synthetic preset ----------------------------------------------------------------------


def test_meld_preset_is_meld_shaped():
    c = synthesize(preset="meld", feature_sizes={"a": 2, "t": 2})
    for split, n in SPLIT_DIALOGUES.items():
        assert len(c.splits[split]) == n
        assert sum(len(d) for d in c.splits[split]) == SPLIT_UTTERANCES[split]
    dialogues = [d for ds in c.splits.values() for d in ds]
    assert len(dialogues) == 1433 and sum(len(d) for d in dialogues) == 13708
    assert [d.id for d in c.splits["dev"]][:2] == ["1039", "1040"]
    assert c.splits["test"][0].id == "1153" and c.n_speakers == 9
    y = np.concatenate([d.labels for d in dialogues])
    want = np.array(list(EMOTION_COUNTS.values())) / 13708
    assert np.abs(np.bincount(y, minlength=7) / len(y) - want).max() < 0.015
    assert np.argmax(np.bincount(y)) == EMOTIONS.index("neutral")
    k = collections.Counter(len(np.unique(d.speakers)) for d in dialogues)
    assert max(k) <= 9 and k.most_common(1)[0][0] == 2 and max(k) >= 6
    # speakers are numbered by first appearance, the first speaking most
    for d in dialogues:
        first = [int(s) for s in dict.fromkeys(d.speakers.tolist())]
        assert first == list(range(len(first)))
    share = np.bincount(np.concatenate([d.speakers for d in dialogues]), minlength=9) / len(y)
    assert share[0] > share[1] > share[2] > share[3] and 0.38 < share[0] < 0.5
    # sentiment follows emotion as in MELD's annotations
    s = np.concatenate([d.other_labels["meld_3"] for d in dialogues])
    sent = LABEL_SETS["meld_3"]
    for emo, allowed in (
        ("neutral", {"neutral"}),
        ("joy", {"positive"}),
        ("anger", {"negative"}),
        ("surprise", {"positive", "negative"}),
    ):
        assert {sent[v] for v in s[y == EMOTIONS.index(emo)]} == allowed
    # seeded
    a = synthesize(**SMALL)
    b = synthesize(**SMALL)
    assert all(
        np.array_equal(x.features["t"], z.features["t"])
        for x, z in zip(a.splits["train"], b.splits["train"])
    )
    c2 = synthesize(**{**SMALL, "seed": 4})
    assert not np.array_equal(
        a.splits["train"][0].features["t"][:1], c2.splits["train"][0].features["t"][:1]
    )


def test_meld_preset_text_strongest_audio_weak():
    from bridging.data.synthetic.calibration import weighted_f1
    from bridging.runs.baselines import fit_logreg

    c = synthesize(preset="meld", n_dialogues=300, seed=0)
    assert {m: c.splits["train"][0].features[m].shape[1] for m in ("a", "t")} == {
        "a": 300,
        "t": 600,
    }

    def flat(split, m):
        ds = c.splits[split]
        x = torch.from_numpy(np.concatenate([d.features[m] for d in ds])).double()
        return x, torch.from_numpy(np.concatenate([d.labels for d in ds]))

    scores = {}
    for m in ("a", "t"):
        x, y = flat("train", m)
        xt, yt = flat("test", m)
        mu, sd = x.mean(0), x.std(0)
        w, b = fit_logreg((x - mu) / sd, y, 7, 1e-2, max_iter=100)
        pred = (((xt - mu) / sd) @ w + b).argmax(1).numpy()
        scores[m] = weighted_f1(yt.numpy(), pred, 7)
    majority = weighted_f1(yt.numpy(), np.zeros_like(yt.numpy()), 7)
    assert scores["t"] > scores["a"] + 0.08 and scores["a"] > majority + 0.02, scores


def test_iemocap_presets_unchanged_by_the_none_defaults():
    sizes = {"a": 4, "t": 5, "v": 3}
    for preset in ("iemocap", "independent"):
        new = synthesize(n_dialogues=14, feature_sizes=sizes, seed=2, preset=preset)
        old, _ = generate(
            n_dialogues=14,
            min_len=8,
            max_len=110,
            mean_len=49.2,
            feature_sizes=sizes,
            label_set="iemocap_6",
            seed=2,
            dev_fraction=0.1,
            params=preset_params(preset),
            preset=preset,
        )
        for split in old.splits:
            for a, b in zip(old.splits[split], new.splits[split]):
                assert a.id == b.id and np.array_equal(a.labels, b.labels)
                assert np.array_equal(a.features["a"], b.features["a"])
    with pytest.raises(ValueError, match="needs preset meld"):
        synthesize(n_dialogues=14, label_set="meld_7")
    with pytest.raises(ValueError, match="preset meld makes MELD labels"):
        synthesize(preset="meld", n_dialogues=14, label_set="iemocap_4")
    with pytest.raises(ValueError, match="mean_len does not apply"):
        synthesize(preset="meld", n_dialogues=14, mean_len=9)


# -- inspect -----------------------------------------------------------------------------------


def expected_summary(corpus):
    """inspect's per-split counts and speakers-per-dialogue histogram, computed here."""
    spk = {
        name: dict(
            sorted(
                collections.Counter(str(len(np.unique(d.speakers))) for d in ds).items(),
                key=lambda kv: int(kv[0]),
            )
        )
        for name, ds in corpus.splits.items()
    }
    return expected_counts(corpus), spk


def test_inspect_reports_meld_counts(meld_file, capsys):
    corpus, path = meld_file
    assert data_main(["inspect", str(path)]) == 0
    s = json.loads(capsys.readouterr().out)
    splits, spk = expected_summary(corpus)
    assert s["format"] == "meld" and s["label_set"] == "meld_7"
    assert s["label_names"] == list(EMOTIONS) and s["splits"] == splits
    assert s["n_speakers"] == 9 and s["speakers"] == [f"s{k}" for k in range(9)]
    assert s["speakers_per_dialogue"] == spk
    assert s["feature_sizes"] == {"a": 6, "t": 10} and s["dev_split"].startswith("official")
    # the sentiments, as a real subprocess (the installed entry point's module)
    out = subprocess.run(
        [sys.executable, "-m", "bridging.cli.data", "inspect", str(path), "--label-set", "meld_3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    s3 = json.loads(out.stdout)
    sent = np.concatenate([d.other_labels["meld_3"] for d in corpus.splits["dev"]])
    assert s3["label_set"] == "meld_3" and s3["splits"]["dev"]["utterances"] == sent.size
    assert s3["splits"]["dev"]["label_counts"] == {
        n: int((sent == i).sum()) for i, n in enumerate(LABEL_SETS["meld_3"])
    }


def test_synth_meld_layout_then_inspect(tmp_path, capsys):
    out = tmp_path / "synth_meld.pkl"
    args = [
        "--preset",
        "meld",
        "--n-dialogues",
        "25",
        "--max-len",
        "9",
        "--sizes",
        "a=5,t=7",
        "--seed",
        "2",
    ]
    assert data_main(["synth", str(out), "--format", "meld", *args]) == 0
    assert "wrote meld dataset (meld_7," in capsys.readouterr().out
    assert data_main(["inspect", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)
    corpus = synthesize(
        preset="meld", n_dialogues=25, max_len=9, seed=2, feature_sizes={"a": 5, "t": 7}
    )
    assert (s["splits"], s["speakers_per_dialogue"]) == expected_summary(corpus)
    assert data_main(["inspect", "--synthetic", *args]) == 0
    assert json.loads(capsys.readouterr().out)["splits"] == s["splits"]
    with pytest.raises(SystemExit, match="use --preset meld"):
        data_main(["synth", str(tmp_path / "x.pkl"), "--layout", "meld"])
    with pytest.raises(SystemExit, match="for IEMOCAP data"):
        data_main(["synth", str(tmp_path / "y.pkl"), "--layout", "cogmen", *args])


# -- graph and model ---------------------------------------------------------------------------


def slow_relations(lengths, speakers, wp, wf, n_speakers, relations):
    edges, offset = {}, 0
    for b, n in enumerate(lengths):
        for i in range(n):
            for j in range(n):
                if (wp == -1 or j >= i - wp) and (wf == -1 or j <= i + wf):
                    si, sj = speakers[b][i], speakers[b][j]
                    later = 0 if i < j else 1
                    if relations == "speaker_pairs":
                        edges[(offset + i, offset + j)] = (si * n_speakers + sj) * 2 + later
                    else:
                        edges[(offset + i, offset + j)] = (0 if si == sj else 1) * 2 + later
        offset += n
    return edges


@pytest.mark.parametrize("relations", ["speaker_pairs", "same_other"])
@pytest.mark.parametrize("wp,wf", [(5, 5), (-1, -1), (0, 3), (2, 0)])
def test_nine_speaker_graph_matches_slow_loop(relations, wp, wf):
    gen = torch.Generator().manual_seed(7)
    seen = set()
    for _ in range(8):
        lengths = torch.randint(1, 25, (5,), generator=gen)
        t = int(lengths.max())
        speakers = torch.randint(0, 9, (5, t), generator=gen)
        speakers[torch.arange(t)[None, :] >= lengths[:, None]] = 0
        ei, et = build_graph(lengths, speakers, wp, wf, 9, relations)
        got = dict(zip(map(tuple, ei.t().tolist()), et.tolist()))
        assert got == slow_relations(lengths.tolist(), speakers.tolist(), wp, wf, 9, relations)
        seen |= set(et.tolist())
    assert n_relations(9, relations) == (162 if relations == "speaker_pairs" else 4)
    assert max(seen) < n_relations(9, relations)
    if relations == "same_other" and wp and wf:
        assert seen == {0, 1, 2, 3}
    assert n_relations(2) == 8  # IEMOCAP's reference count unchanged
    with pytest.raises(ValueError, match="unknown relations 'pairs'"):
        relation_types(
            window_edges(lengths, 1, 1),
            torch.zeros(int(lengths.sum()), dtype=torch.long),
            9,
            "pairs",
        )


def conv_params(gnn: GNN) -> int:
    return sum(p.numel() for p in gnn.conv1.parameters())


def test_num_bases_parameter_counts_and_dense_equivalence():
    g, h = 100, 100
    full = GNN(g, h, n_relations(9), heads=1)
    assert conv_params(full) == 162 * g * h + g * h + h  # 1,630,100
    bases = GNN(g, h, n_relations(9), heads=1, num_bases=30)
    assert conv_params(bases) == 30 * g * h + 162 * 30 + g * h + h  # 314,960
    assert tuple(bases.conv1.comp.shape) == (162, 30)
    same_other = GNN(g, h, n_relations(9, "same_other"), heads=1)
    assert conv_params(same_other) == 4 * g * h + g * h + h  # 50,100
    # the conv equals a slow per-relation mean with relation_weight() (what a dense export uses)
    torch.manual_seed(0)
    small = GNN(6, 5, n_relations(3), heads=1, num_bases=4)
    lengths = torch.tensor([7, 4])
    spk = torch.randint(0, 3, (2, 7))
    ei, et = build_graph(lengths, spk, 2, 3, 3)
    x = torch.randn(int(lengths.sum()), 6)
    w = small.relation_weight()
    assert w.shape == (18, 6, 5)
    want = x @ small.conv1.root + small.conv1.bias
    for j in range(x.shape[0]):
        for r in range(18):
            src = ei[0][(ei[1] == j) & (et == r)]
            if len(src):
                want[j] = want[j] + x[src].mean(0) @ w[r]
    assert torch.allclose(small.conv1(x, ei, et), want, atol=1e-5)
    with pytest.raises(ValueError, match="num_bases must be null or an integer >= 1"):
        GNN(g, h, 8, num_bases=0)


def test_cogmen_relations_and_bases_options():
    x = torch.randn(2, 6, 10)
    lengths = torch.tensor([6, 3])
    spk = torch.tensor([[0, 1, 2, 8, 1, 0], [3, 4, 3, 0, 0, 0]])
    for relations, bases, n_rel in (
        ("speaker_pairs", None, 162),
        ("same_other", None, 4),
        ("speaker_pairs", 30, 162),
    ):
        model = COGMEN(10, 7, n_speakers=9, hidden_size=8, relations=relations, num_bases=bases)
        assert model.gcn.num_relations == n_rel and model.gcn.num_bases == bases
        out = model.eval()(x, lengths, spk)
        assert out.log_probs.shape == (9, 7)
    with pytest.raises(ValueError, match="unknown relations"):
        COGMEN(10, 7, n_speakers=9, relations="all")
    # a training batch of one one-utterance dialogue (MELD has 88 of them): BatchNorm cannot
    # normalise one node, the running statistics do, exactly as in eval mode
    model.train()
    one = model(x[:1, :1], torch.tensor([1]), spk[:1, :1])
    assert one.log_probs.shape == (1, 7) and torch.isfinite(one.log_probs).all()
    gnn = GNN(6, 5, 8).train()
    node, loop = torch.randn(1, 6), torch.zeros(2, 1, dtype=torch.long)
    trained = gnn(node, loop, torch.tensor([1]))
    assert torch.equal(trained, gnn.eval()(node, loop, torch.tensor([1])))
    assert int(gnn.bn.num_batches_tracked) == 0  # the running statistics were not updated


# -- the five presets, trained -----------------------------------------------------------------

TINY_MELD = [
    "data=tiny_meld",  # 24 dialogues of at most 8 utterances, a 12 + t 16
    "logger=none",
    "trainer=smoke",
    "trainer.max_epochs=2",
    "model.seqcontext_nlayer=1",
    "model.gnn_nheads=1",
    "model.hidden_size=16",
    "model.num_bases=4",
]
PRESETS = ["meld_teacher", "meld_audio_only", "meld_student_kd", "meld_masked", "meld_masked_nognn"]


@pytest.mark.parametrize("name", PRESETS)
def test_meld_presets_train_and_size_the_model_from_the_data(compose_cfg, tmp_path, name):
    from bridging.cli.train import main as train_main

    out = tmp_path / name
    cfg = compose_cfg([f"experiment={name}", *TINY_MELD], output_dir=out)
    assert cfg.data.label_set == "meld_7" and cfg.data.synthetic.preset == "meld"
    train_main.task(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["label_set"] == "meld_7" and metrics["label_names"] == list(EMOTIONS)
    assert 0.0 <= metrics["test"]["wf1"] <= 1.0 and len(metrics["test"]["confusion"]) == 7
    assert metrics["data"]["n_speakers"] == 9
    assert metrics["data"]["splits"]["test"]["utterances"] > 0
    mods = {"meld_teacher": "at", "meld_masked": "at", "meld_masked_nognn": "at"}.get(name, "a")
    assert metrics["modalities"] == list(mods)
    if name.startswith("meld_masked"):
        assert metrics["eval_modalities"] == ["a"]
    state = torch.load(out / metrics["best_checkpoint"], map_location="cpu", weights_only=True)[
        "state_dict"
    ]
    in_size = {"a": 12, "at": 28}[mods]
    assert tuple(state["model.rnn.transformer_out.weight"].shape) == (16, in_size)
    assert state["model.clf.lin2.weight"].shape[0] == 7
    if name == "meld_masked_nognn":
        assert not any(k.startswith("model.gcn.") for k in state)
    else:
        assert tuple(state["model.gcn.conv1.comp"].shape) == (162, 4)  # 2 * 9^2 relations
        assert tuple(state["model.gcn.conv1.weight"].shape) == (4, 16, 16)
    if name == "meld_student_kd":
        teacher = json.loads((out / "teacher" / "metrics.json").read_text())
        assert teacher["experiment"] == "meld_teacher" and teacher["modalities"] == ["a", "t"]
