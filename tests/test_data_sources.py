"""Data sources: synthetic generator, the official layouts, bridging's format, validation."""

from __future__ import annotations

import io
import json
import os
import pickle
from dataclasses import replace

import numpy as np
import pytest

from bridging.data.formats.cogmen import read_cogmen, sample_class_map, write_cogmen
from bridging.data.formats.dialoguernn import read_dialoguernn, write_dialoguernn
from bridging.data.formats.native import read_native, write_native
from bridging.data.formats.safe_pickle import safe_load
from bridging.data.formats.sources import FORMATS, convert, detect_format, load_corpus
from bridging.data.records import IGNORE_INDEX, LABEL_SETS, Corpus, DataError
from bridging.data.synthetic import synthesize
from bridging.data.validate import convert_label_set, validate_corpus

SMALL = {"a": 6, "t": 10, "v": 8}


def small(label_set="iemocap_6", seed=0, n=24, **kw) -> Corpus:
    kw.setdefault("feature_sizes", SMALL)
    return synthesize(
        n_dialogues=n, min_len=4, max_len=20, mean_len=10, label_set=label_set, seed=seed, **kw
    )


def assert_same(a: Corpus, b: Corpus, *, sentences=True) -> None:
    assert a.label_set == b.label_set and tuple(a.label_names) == tuple(b.label_names)
    assert {k: len(v) for k, v in a.splits.items() if v} == {
        k: len(v) for k, v in b.splits.items() if v
    }
    for split, dialogues in a.splits.items():
        for da, db in zip(dialogues, b.splits[split]):
            assert da.id == db.id
            np.testing.assert_array_equal(da.labels, db.labels)
            np.testing.assert_array_equal(da.speakers, db.speakers)
            assert sorted(da.features) == sorted(db.features)
            for m in da.features:
                assert db.features[m].dtype == np.float32
                np.testing.assert_array_equal(da.features[m], db.features[m])
            if sentences:
                assert da.sentences == db.sentences


# ---------------------------------------------------------------------------- synthetic


def test_synthetic_defaults_are_iemocap_shaped():
    c = synthesize(total_utterances=7433)  # timing: benchmarks/bench_load.py
    assert c.label_set == "iemocap_6" and c.source_format == "synthetic"
    assert [len(c.splits[s]) for s in ("train", "dev", "test")] == [108, 12, 31]
    lengths = [len(d) for s in c.splits.values() for d in s]
    assert sum(lengths) == 7433 and min(lengths) >= 8 and max(lengths) <= 110
    d = c.splits["train"][0]
    assert {m: x.shape[1] for m, x in d.features.items()} == {"a": 100, "t": 768, "v": 512}
    assert all(x.dtype == np.float32 for x in d.features.values())
    labels = np.concatenate([d.labels for s in c.splits.values() for d in s])
    freq = np.bincount(labels, minlength=6) / len(labels)
    assert freq.max() > 1.5 * freq.min()  # IEMOCAP-like, not uniform
    assert freq[5] > freq[0]  # fru more frequent than hap, as in IEMOCAP
    assert all(d.id.startswith("Ses05") for d in c.splits["test"])
    validate_corpus(c, ["a", "t", "v"])


def test_synthetic_dev_is_first_tenth_of_training_and_seeded():
    c = small(n=40, n_test_dialogues=8)  # 32 training dialogues -> dev 3
    again = small(n=40, n_test_dialogues=8)
    other = small(n=40, n_test_dialogues=8, seed=1)
    assert [d.id for d in c.splits["dev"]] == [f"Ses01_synth{k:03d}" for k in range(3)]
    assert len(c.splits["train"]) == 29 and len(c.splits["test"]) == 8
    assert_same(c, again)
    assert not np.array_equal(
        c.splits["train"][0].features["a"], other.splits["train"][0].features["a"]
    )


def test_synthetic_speakers_alternate_irregularly_and_emotions_persist():
    c = synthesize(feature_sizes=SMALL, seed=3)
    switches = repeats = same_speaker_same_label = same_speaker_pairs = 0
    for d in c.splits["train"]:
        s, y = d.speakers, d.labels
        switches += int((s[1:] != s[:-1]).sum())
        repeats += int((s[1:] == s[:-1]).sum())
        for spk in (0, 1):
            ys = y[s == spk]
            same_speaker_pairs += max(len(ys) - 1, 0)
            same_speaker_same_label += int((ys[1:] == ys[:-1]).sum())
    # turns switch speaker with probability 0.8; dropping the utterances without a majority
    # label (as IEMOCAP does) leaves about 0.65 switches between consecutive stored turns
    assert switches > 1.5 * repeats > 0
    # a speaker's next emotion repeats far more often than chance (~0.2 for 6 classes)
    assert same_speaker_same_label / same_speaker_pairs > 0.6


def test_synthetic_four_way_drops_exc_fru_without_empty_dialogues():
    c6 = small(seed=5)
    c4 = small(label_set="iemocap_4", seed=5)
    assert c4.label_names == LABEL_SETS["iemocap_4"]
    n4 = sum(len(d) for s in c4.splits.values() for d in s)
    n6 = sum(len(d) for s in c6.splits.values() for d in s)
    assert 0 < n4 < n6
    for dialogues in c4.splits.values():
        for d in dialogues:
            assert len(d) > 0 and d.labels.max() < 4
    # 4-way = 6-way minus exc/fru, dialogue for dialogue (only emptied ones are redrawn)
    dropped = convert_label_set(c6, "iemocap_4")
    for split, dialogues in dropped.splits.items():
        by_id = {d.id: d for d in c4.splits[split]}
        assert len(by_id) == len(c6.splits[split])
        for d in dialogues:
            np.testing.assert_array_equal(d.labels, by_id[d.id].labels)
            np.testing.assert_array_equal(d.features["v"], by_id[d.id].features["v"])


# -------------------------------------------------------------------- official layouts


def test_cogmen_round_trip(tmp_path):
    c = small(label_set="iemocap_4")
    path = tmp_path / "data_iemocap_4.pkl"
    write_cogmen(c, path)
    raw = path.read_bytes()
    assert b"cogmen.Sample" in raw and b"Sample" in raw
    assert detect_format(path) == "cogmen"
    loaded = load_corpus(path, label_set="iemocap_4")
    assert loaded.source_format == "cogmen" and loaded.path == str(path)
    assert_same(c, loaded)
    # the stored t is the 2-D sbert embedding: same values as the per-utterance `text` list
    obj = safe_load(path, extra=sample_class_map())
    s = obj["train"][0]
    assert s.sbert_sentence_embeddings.shape == (len(s.label), SMALL["t"])
    assert s.speaker[0] in ("M", "F") and isinstance(s.label[0], int)


def test_cogmen_six_way_file_needs_six_way_label_set(tmp_path):
    path = tmp_path / "data_iemocap.pkl"
    write_cogmen(small(), path)
    assert_same(small(), load_corpus(path, label_set="iemocap_6"))
    assert load_corpus(path, label_set=None).label_set == "iemocap_6"
    with pytest.raises(DataError, match=r"outside the label set iemocap_4.*needs label_set"):
        load_corpus(path, label_set="iemocap_4")


def test_cogmen_reader_accepts_2d_arrays_and_reports_bad_utterance(tmp_path):
    c = small(label_set="iemocap_4")
    k, d = next((k, d) for k, d in enumerate(c.splits["train"]) if len(d) >= 3)
    path = tmp_path / "c.pkl"
    write_cogmen(c, path)
    assert_same(c, read_cogmen(path, "iemocap_4"))  # t stored 2-D, a and v as lists
    # make one audio vector one element short
    bad = list(d.features["a"])
    bad[2] = bad[2][:-1]
    obj = safe_load(path, extra=sample_class_map())
    obj["train"][k].audio = bad
    from bridging.data.formats.cogmen import cogmen_from_object

    with pytest.raises(
        DataError,
        match=rf"c.pkl: split 'train', dialogue '{d.id}', modality 'a': utterance 2 has feature "
        r"shape \(5,\), expected \(6,\)",
    ):
        cogmen_from_object(obj, label_set="iemocap_4", where=str(path))


@pytest.mark.parametrize("protocol", [0, 2])
def test_dialoguernn_round_trip(tmp_path, protocol):
    c = small()
    path = tmp_path / "IEMOCAP_features.pkl"
    write_dialoguernn(c, path, protocol=protocol)
    assert detect_format(path) == "dialoguernn"
    assert_same(c, load_corpus(path, label_set="iemocap_6"))
    four = load_corpus(path)  # default label set iemocap_4
    assert four.label_set == "iemocap_4"
    assert_same(convert_label_set(c, "iemocap_4"), four)


def test_dialoguernn_dev_is_first_tenth_in_stored_order_and_drops_for_four_way(tmp_path):
    def dialogue(vid, labels):
        n = len(labels)
        return (
            vid,
            ["M", "F"] * (n // 2) + ["M"] * (n % 2),
            labels,
            [np.full(3, i, np.float64) for i in range(n)],
        )

    train = [dialogue(f"tr{k:02d}", [k % 6, (k + 1) % 6, 2]) for k in range(21)]
    train[5] = ("tr05", ["M", "F"], [4, 5], [np.zeros(3), np.ones(3)])  # exc/fru only
    test = [dialogue("te0", [0, 4, 1, 5]), dialogue("te1", [3])]
    order = [t[0] for t in train]
    order = order[7:] + order[:7]  # stored order is not sorted order
    tables = [{} for _ in range(7)]
    for vid, spk, lab, feat in train + test:
        tables[0][vid] = list(range(len(lab)))
        tables[1][vid], tables[2][vid] = spk, lab
        tables[3][vid] = tables[4][vid] = tables[5][vid] = feat
        tables[6][vid] = ["x"] * len(lab)
    path = tmp_path / "feat.pkl"
    path.write_bytes(pickle.dumps((*tables, order, ["te0", "te1"]), protocol=2))
    c6 = read_dialoguernn(path, "iemocap_6")
    assert [d.id for d in c6.splits["dev"]] == order[:2]  # int(0.1 * 21) = 2
    assert [d.id for d in c6.splits["train"]] == order[2:]
    c4 = read_dialoguernn(path, "iemocap_4")
    assert "tr05" not in [d.id for d in c4.splits["train"] + c4.splits["dev"]]
    te0 = c4.splits["test"][0]
    np.testing.assert_array_equal(te0.labels, [0, 1])
    np.testing.assert_array_equal(te0.features["a"][:, 0], [0, 2])  # utterances 1 and 3 dropped
    assert te0.sentences == ["x", "x"] and list(te0.speakers) == [0, 0]


def test_numpy1_array_pickles_load(tmp_path):
    # files written with numpy 1.x name numpy.core.multiarray, not numpy._core.multiarray
    c = small(n=12, n_test_dialogues=2)
    path = tmp_path / "old.pkl"
    write_dialoguernn(c, path, protocol=2)
    raw = path.read_bytes()
    assert b"numpy._core.multiarray" in raw
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert_same(c, load_corpus(path, label_set="iemocap_6"))


def test_dialoguernn_python2_style_strings_load_with_latin1():
    # protocol-0 STRING opcodes are what Python 2 wrote for str
    raw = b"(lp0\nS'M'\np1\naS'F'\np2\na."
    assert safe_load(raw, encoding="latin1") == ["M", "F"]


def test_dialoguernn_unknown_speaker_and_missing_entry(tmp_path):
    c = small(n=12, n_test_dialogues=2)
    path = tmp_path / "f.pkl"
    write_dialoguernn(c, path)
    obj = list(safe_load(path, encoding="latin1"))
    vid = obj[8][0]
    obj[1][vid] = ["M", "X"] + obj[1][vid][2:]
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(tuple(obj), protocol=2))
    with pytest.raises(
        DataError,
        match=rf"bad.pkl: split 'test', dialogue '{vid}': speaker of utterance 1 is 'X', "
        r"expected one of \['F', 'M'\]",
    ):
        load_corpus(bad, label_set="iemocap_6")
    del obj[4][vid]
    obj[1][vid] = ["M"] * len(obj[2][vid])
    bad.write_bytes(pickle.dumps(tuple(obj), protocol=2))
    with pytest.raises(
        DataError, match=rf"dialogue '{vid}': listed in testVid but missing from videoAudio"
    ):
        load_corpus(bad, label_set="iemocap_6")


# ------------------------------------------------------------------------------ native


@pytest.mark.parametrize("name", ["corpus", "corpus.safetensors"])
def test_native_round_trip_and_label_sets(tmp_path, name):
    c = small()
    path = write_native(c, tmp_path / name)
    assert detect_format(path) == "native"
    back = read_native(path)
    assert back.source_format == "native" and back.extractors == c.extractors
    assert_same(c, back)
    assert_same(convert_label_set(c, "iemocap_4"), load_corpus(path, label_set="iemocap_4"))
    write_native(convert_label_set(c, "iemocap_4"), path, force=True)  # replaces the corpus
    four = load_corpus(path, label_set=None)
    assert four.label_set == "iemocap_4"
    with pytest.raises(DataError, match=r"holds iemocap_4 labels; iemocap_6 was asked for"):
        load_corpus(path, label_set="iemocap_6")
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind


def test_native_layout_is_pickle_free_and_documented(tmp_path):
    path = write_native(small(), tmp_path / "corpus")
    assert sorted(p.name for p in path.iterdir()) == [
        "dev.safetensors",
        "meta.json",
        "test.safetensors",
        "train.safetensors",
    ]
    meta = json.loads((path / "meta.json").read_text())
    assert meta["format"] == "bridging-corpus" and meta["version"] == 1
    assert meta["feature_sizes"] == SMALL and meta["label_set"] == "iemocap_6"
    assert load_corpus(path / "meta.json", label_set=None).label_set == "iemocap_6"
    from safetensors.numpy import load_file

    t = load_file(str(path / "train.safetensors"))
    assert t["offsets"][-1] == t["labels"].shape[0] == t["features/a"].shape[0]


def test_native_refuses_to_overwrite_other_things_and_checks_offsets(tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("keep")
    with pytest.raises(DataError, match="not a bridging corpus; refusing to overwrite"):
        write_native(small(), other)
    path = write_native(small(), tmp_path / "corpus")
    meta = json.loads((path / "meta.json").read_text())
    meta["splits"]["train"]["dialogue_ids"].append("extra")
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"split 'train': offsets .* do not describe"):
        read_native(path)
    meta["version"] = 99
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="format version 99"):
        read_native(path)


def test_convert_to_native(tmp_path):
    c = small()
    src = tmp_path / "IEMOCAP_features.pkl"
    write_dialoguernn(c, src)
    out = tmp_path / "native"
    converted = convert(src, out)
    assert converted.label_set == "iemocap_6"
    assert_same(c, load_corpus(out, label_set="iemocap_6"))


# ----------------------------------------------------------------- detection and errors


def test_detect_format_and_load_errors(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.pkl: no such file"):
        load_corpus(tmp_path / "nothing.pkl")
    with pytest.raises(DataError, match=r"no such file"):
        detect_format(tmp_path / "nothing.pkl")
    with pytest.raises(
        DataError,
        match=r"unknown data format 'csv': known formats are cogmen, dialoguernn, meld, native",
    ):
        load_corpus(tmp_path, format="csv")
    assert FORMATS == ("cogmen", "dialoguernn", "meld", "native")
    odd = tmp_path / "odd.pkl"
    odd.write_bytes(pickle.dumps({"x": [1, 2]}))
    with pytest.raises(
        DataError, match=r"unrecognised data: a pickle holding a dict with keys \['x'\]"
    ):
        detect_format(odd)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(DataError, match="garbage.bin: not a readable pickle or corrupt"):
        load_corpus(garbage)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_corpus(empty)
    c = small(label_set="iemocap_4")
    p = tmp_path / "c.pkl"
    write_cogmen(c, p)
    with pytest.raises(DataError, match="asked to read it as dialoguernn but it holds cogmen"):
        load_corpus(p, format="dialoguernn")
    at = small(label_set="iemocap_4", feature_sizes={"a": 4, "t": 5})
    p2 = tmp_path / "at.pkl"
    write_cogmen(at, p2)
    assert load_corpus(p2, modalities=["t", "a"]).modalities == ["a", "t"]
    with pytest.raises(
        DataError, match=r"at.pkl: modality \['v'\] asked for but absent: the data has \['a', 't'\]"
    ):
        load_corpus(p2, modalities=["a", "v"])


# --------------------------------------------------------------------------- validation


def _bad(mutate, **corpus_changes) -> Corpus:
    c = small(label_set="iemocap_4", n=12, n_test_dialogues=2)
    c.path = "data/x.pkl"
    d = c.splits["train"][1]
    mutate(d)
    for k, v in corpus_changes.items():
        setattr(c, k, v)
    return c


def _set_feat(d, m, x):
    d.features = {**d.features, m: x}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: setattr(d, "labels", d.labels[:-1]),
            r"speakers has \d+ entries but labels has \d+: expected one speaker per utterance",
        ),
        (
            lambda d: _set_feat(d, "v", d.features["v"][:-1]),
            r"modality 'v' has shape \(\d+, 8\), expected \[\d+, D\]: one feature vector per",
        ),
        (
            lambda d: setattr(d, "labels", np.where(np.arange(len(d)) == 1, 7, d.labels)),
            r"label of utterance 1 is 7, outside the label set iemocap_4 \(expected 0..3 or -100\)",
        ),
        (
            lambda d: setattr(d, "speakers", np.where(np.arange(len(d)) == 0, 2, d.speakers)),
            r"speaker id of utterance 0 is 2, expected 0..1 \(M, F\)",
        ),
        (
            lambda d: _set_feat(
                d,
                "t",
                np.where(np.arange(len(d))[:, None] == 2, np.nan, d.features["t"]).astype(
                    np.float32
                ),
            ),
            r"modality 't', utterance 2 has a non-finite feature \(nan at index 0\)",
        ),
        (
            lambda d: _set_feat(d, "a", np.full_like(d.features["a"], np.inf)),
            r"modality 'a', utterance 0 has a non-finite feature \(inf",
        ),
        (
            lambda d: _set_feat(d, "a", d.features["a"][:, :-1]),
            r"modality 'a' has 5 features per utterance but 6 in split 'train', dialogue",
        ),
        (
            lambda d: (
                setattr(d, "labels", d.labels[:0]),
                setattr(d, "speakers", d.speakers[:0]),
                setattr(d, "features", {m: x[:0] for m, x in d.features.items()}),
                setattr(d, "sentences", []),
            ),
            r"empty dialogue \(no utterance\)",
        ),
        (
            lambda d: setattr(d, "features", {"a": d.features["a"], "t": d.features["t"]}),
            r"has modalities \['a', 't'\] but the first dialogue has \['a', 't', 'v'\]",
        ),
    ],
)
def test_validate_errors_name_file_split_dialogue_and_field(mutate, message):
    c = _bad(mutate)
    d = c.splits["train"][1]
    with pytest.raises(
        DataError, match=rf"^data/x.pkl: split 'train', dialogue '{d.id}': {message}"
    ):
        validate_corpus(c)


def test_validate_labels_ignore_index_allowed_and_modality_checks():
    c = _bad(
        lambda d: setattr(d, "labels", np.where(np.arange(len(d)) == 0, IGNORE_INDEX, d.labels))
    )
    assert validate_corpus(c, ["a"]) is c
    c = _bad(lambda d: setattr(d, "features", {"a": d.features["a"]}))
    with pytest.raises(
        DataError, match=r"modality 'v' asked for but absent in this dialogue \(it has \['a'\]\)"
    ):
        validate_corpus(c, ["a", "v"])
    assert validate_corpus(c, ["a"]) is c
    only_a = replace(
        c,
        splits={
            k: [replace(d, features={"a": d.features["a"]}) for d in v] for k, v in c.splits.items()
        },
    )
    with pytest.raises(
        DataError, match=r"^data/x.pkl: modality \['t'\] asked for but absent: the data has \['a'\]"
    ):
        validate_corpus(only_a, ["t", "a"])


@pytest.mark.parametrize("split, state", [("train", "empty"), ("test", "missing")])
def test_validate_empty_or_missing_split(split, state):
    c = small(n=12, n_test_dialogues=2)
    if state == "empty":
        c.splits[split] = []
    else:
        del c.splits[split]
    with pytest.raises(
        DataError, match=rf"<synthetic>: split '{split}' is {state}: train and test must hold"
    ):
        validate_corpus(c)
    c = small(n=12, n_test_dialogues=2)
    c.splits["dev"] = []
    validate_corpus(c)  # dev may be empty


def test_reader_reports_nan_from_file(tmp_path):
    c = small(n=12, n_test_dialogues=2)
    d = c.splits["test"][0]
    d.features["a"][3, 1] = np.nan
    path = tmp_path / "nan.pkl"
    write_dialoguernn(c, path)
    with pytest.raises(
        DataError,
        match=rf"nan.pkl: split 'test', dialogue '{d.id}': modality 'a', utterance 3 has a "
        "non-finite",
    ):
        load_corpus(path, label_set="iemocap_6")


# ---------------------------------------------------------------------- safe unpickler


class Arbitrary:
    def __init__(self):
        self.x = 1


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_safe_load_refuses_code_execution(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": [Evil(marker)]}, protocol=protocol))
    with pytest.raises(DataError, match=r"evil.pkl: refused to unpickle posix.system"):
        safe_load(path)
    with pytest.raises(DataError, match=r"refused to unpickle posix.system"):
        load_corpus(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_safe_load_refuses_arbitrary_classes(protocol):
    raw = pickle.dumps([1, Arbitrary()], protocol=protocol)
    with pytest.raises(
        DataError, match=r"<bytes>: refused to unpickle [\w.]*test_data_sources.Arbitrary"
    ):
        safe_load(raw)
    with pytest.raises(DataError, match=r"refused to unpickle builtins.eval"):
        safe_load(b"cbuiltins\neval\n(S'1'\ntR.")
    with pytest.raises(DataError, match=r"_codecs.encode with encoding 'rot13' is refused"):
        safe_load(b"c_codecs\nencode\n(S'abc'\nS'rot13'\ntR.")


def test_safe_load_allows_data_containers():
    import collections

    obj = {
        "arr": np.arange(6, dtype=np.float64).reshape(2, 3),
        "scalars": (np.float32(1.5), np.int64(3), 2j, True, None, b"\x00\xff", "é"),
        "sets": ({1}, frozenset([2])),
        "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list, k=[1]),
        "rng": (range(3), slice(1, 2)),
    }
    for protocol in range(6):
        back = safe_load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
        np.testing.assert_array_equal(back["arr"], obj["arr"])
        assert back["scalars"] == obj["scalars"] and back["dd"]["k"] == [1]
        assert back["sets"] == obj["sets"] and back["rng"] == obj["rng"]


def test_synth_rejects_bad_arguments():
    with pytest.raises(ValueError, match="total_utterances 5 impossible"):
        synthesize(n_dialogues=3, total_utterances=5)
    with pytest.raises(ValueError, match="feature_sizes"):
        synthesize(feature_sizes={"x": 3})


@pytest.mark.parametrize("writer", [write_cogmen, write_dialoguernn])
def test_four_way_files_are_not_read_as_six_way(tmp_path, writer):
    c = small(label_set="iemocap_4", n=60, n_test_dialogues=10)
    assert sum(len(d) for s in c.splits.values() for d in s) >= 200
    path = tmp_path / "four.pkl"
    writer(c, path)
    with pytest.raises(
        DataError,
        match=r"four.pkl: iemocap_6 was asked for but none of its \d+ utterances is exc or fru",
    ):
        load_corpus(path, label_set="iemocap_6")
    stored = load_corpus(path, label_set=None)
    assert stored.label_set == "iemocap_4"
    assert_same(c, stored)
    assert load_corpus(path, label_set="iemocap_4").label_set == "iemocap_4"
