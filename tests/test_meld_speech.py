"""Real speech on MELD, end to end on a fake release: prepare-meld (CSVs + wavs -> a bridging
dataset) -> train experiment=meld_audio_only -> bridging-predict-audio on a test dialogue's
wav files; plus the reader's rules and its error messages."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("opensmile")

from bridging.cli.data import main as data_main  # noqa: E402
from bridging.data.formats.native import read_native  # noqa: E402
from bridging.data.records import LABEL_SETS, DataError  # noqa: E402
from bridging.speech.meld import build_corpus, scan_meld  # noqa: E402
from bridging.speech.testing import MELD_COLUMNS, write_fake_meld_release  # noqa: E402

SEVEN = LABEL_SETS["meld_7"]
THREE = LABEL_SETS["meld_3"]


#: a seconds-long speech-only run on the prepared data (+ data.path, paths.output_dir)
TINY_MELD_RUN = [
    "experiment=meld_audio_only",
    "data=meld",
    "model.seqcontext_nlayer=1",
    "model.gnn_nheads=2",
    "model.num_bases=2",
    "trainer.max_epochs=1",
    "logger=none",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("meld")
    return root, write_fake_meld_release(root)


@pytest.fixture(scope="module")
def prepared(release, tmp_path_factory):
    root, _ = release
    out = tmp_path_factory.mktemp("prepared") / "meld7"
    assert data_main(["prepare-meld", str(root), str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory):
    """best.ckpt of TINY_MELD_RUN, trained with one intra-op thread (tiny tensors; the
    module-scoped fixture runs outside conftest's per-test thread setting)."""
    from bridging.runs.config import compose
    from bridging.runs.experiment import train

    out = tmp_path_factory.mktemp("meld_run")
    cfg = compose("train", [*TINY_MELD_RUN, f"data.path={prepared}", f"paths.output_dir={out}"])
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg)
    finally:
        torch.set_num_threads(before)
    return out / "checkpoints" / "best.ckpt"


def _truth(written, split):
    """{dialogue name: [utterance dicts in Utterance_ID order]} of one split."""
    out = {}
    for w in written:
        if w["split"] == split:
            out.setdefault(f"{split}_dia{w['dialogue']}", []).append(w)
    return out


# -- prepare-meld ------------------------------------------------------------------------------
def test_prepared_dataset(release, prepared):
    root, written = release
    corpus = read_native(prepared)
    assert corpus.label_set == "meld_7" and corpus.modalities == ["a"]
    assert corpus.n_speakers == 9
    assert corpus.speaker_names == tuple(f"s{k}" for k in range(9))
    counts = {s: (len(ds), sum(len(d) for d in ds)) for s, ds in corpus.splits.items()}
    assert counts == {"train": (12, 44), "dev": (3, 9), "test": (4, 17)}
    spec = corpus.extractors["a"]
    assert spec["name"] == "egemaps" and spec["dim"] == 88
    assert spec["projection"]["kind"] == "standardize"
    assert json.loads((prepared / "meta.json").read_text())["extractors"]["a"] == spec
    sentiments = read_native(prepared, label_set="meld_3")
    assert sentiments.label_set == "meld_3"
    for split, dialogues in corpus.splits.items():
        truth = _truth(written, split)
        # MELD's ids restart per split, train skips id 1: dialogues in Dialogue_ID order
        assert [d.id for d in dialogues] == list(truth)
        for d, d3 in zip(dialogues, sentiments.splits[split]):
            mine = truth[d.id]  # the CSV lists them out of order; Utterance_ID order here
            assert [SEVEN[y] for y in d.labels] == [w["emotion"] for w in mine]
            assert [THREE[y] for y in d3.labels] == [w["sentiment"] for w in mine]
            assert d.speakers.tolist() == [w["slot"] for w in mine]
            assert d.sentences == [w["text"] for w in mine]
    assert [d.id for d in corpus.splits["train"]][:2] == ["train_dia0", "train_dia2"]
    # slots by first appearance, whoever the person
    first = corpus.splits["test"][0]
    assert set(first.speakers.tolist()) == {0, 1} and first.speakers[0] == 0
    train_x = np.concatenate([d.features["a"] for d in corpus.splits["train"]])
    np.testing.assert_allclose(train_x.mean(0), 0, atol=1e-4)


def test_sentiment_labels_reuse_the_cache(release, prepared, tmp_path, monkeypatch):
    from bridging.speech import extractors

    root, written = release
    calls = []
    real = extractors.EGeMAPSExtractor.features_of
    monkeypatch.setattr(
        extractors.EGeMAPSExtractor,
        "features_of",
        lambda self, path: calls.append(path) or real(self, path),
    )
    out = tmp_path / "meld3"
    cache = prepared.with_name(prepared.name + ".cache")
    argv = ["prepare-meld", str(root), str(out), "--labels", "meld_3", "--cache-dir", str(cache)]
    assert data_main(argv + ["--no-progress"]) == 0
    assert calls == []  # every utterance came from the meld_7 run's cache
    corpus = read_native(out)
    assert corpus.label_set == "meld_3" and corpus.label_names == THREE
    got = [THREE[y] for d in corpus.splits["dev"] for y in d.labels]
    assert got == [w["sentiment"] for ds in _truth(written, "dev").values() for w in ds]
    seven = read_native(out, label_set="meld_7")
    np.testing.assert_array_equal(
        seven.splits["test"][1].labels, read_native(prepared).splits["test"][1].labels
    )


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        data_main(["prepare-meld", "--help"])
    text = capsys.readouterr().out
    for option in (
        "ROOT",
        "OUT",
        "--labels",
        "--audio-features",
        "--hubert-path",
        "--hubert-layer",
        "--text-model",
        "--workers",
        "--cache-dir",
        "--no-standardize",
        "--no-progress",
        "--csv-dir",
        "--wav-dir",
        "--skip-missing-wavs",
    ):
        assert option in text
    assert "meld_7" in text and "meld_3" in text


# -- errors ---------------------------------------------------------------------------------
def _csv_copy(root, tmp_path):
    """The release's CSVs in a folder of their own (wavs stay: --wav-dir)."""
    folder = tmp_path / "csv"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        shutil.copy(root / f"{split}_sent_emo.csv", folder)
    return folder


def _rewrite(path, change):
    rows = list(csv.reader(path.open(newline="")))
    rows = change(rows)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def _error(capsys, root, folder, *extra) -> str:
    argv = ["prepare-meld", str(root), str(folder / "out"), "--csv-dir", str(folder)]
    assert data_main(argv + ["--wav-dir", str(root / "wav"), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bridging-data: error: ")
    return err.strip()


def test_csv_errors_name_file_row_and_field(release, tmp_path, capsys):
    root, written = release
    folder = _csv_copy(root, tmp_path)
    dev = folder / "dev_sent_emo.csv"
    original = dev.read_text()
    col = {c: i for i, c in enumerate(MELD_COLUMNS)}

    def set_field(column, value, k=2, **more):
        def change(rows):
            rows[k][col[column]] = value
            for c, v in more.items():
                rows[k][col[c]] = v
            return rows

        dev.write_text(original)
        _rewrite(dev, change)
        return rows_of()[k - 1][0]  # its Sr No.

    def rows_of():
        return list(csv.reader(dev.open(newline="")))[1:]

    sr = set_field("Emotion", "happiness")
    err = _error(capsys, root, folder)
    assert err == (
        f"bridging-data: error: {dev}: Sr No. {sr}: Emotion: 'happiness', expected one of "
        "neutral, surprise, fear, sadness, joy, disgust, anger"
    )
    sr = set_field("Sentiment", "mixed")
    assert f"{dev}: Sr No. {sr}: Sentiment: 'mixed', expected one of neutral" in _error(
        capsys, root, folder
    )
    sr = set_field("Utterance_ID", "2a")
    assert _error(capsys, root, folder).endswith(
        f"{dev}: Sr No. {sr}: Utterance_ID: '2a', expected a non-negative integer"
    )
    set_field("Dialogue_ID", "-1", **{"Sr No.": ""})  # no Sr No.: the line is named
    assert f"{dev}: line 3: Dialogue_ID: '-1'" in _error(capsys, root, folder)

    dev.write_text(original)
    _rewrite(dev, lambda rows: rows[:3] + [rows[3][:5]] + rows[4:])
    assert f"{dev}: Sr No. {rows_of()[2][0]}: row: 5 fields, expected 11" in _error(
        capsys, root, folder
    )
    _rewrite(dev, lambda rows: [[c for i, c in enumerate(r) if i != col["Emotion"]] for r in rows])
    assert f"{dev}: header: no 'Emotion' column" in _error(capsys, root, folder)
    dev.write_text(original)
    dup = rows_of()[0]
    _rewrite(dev, lambda rows: rows + [["999"] + rows[1][1:]])
    assert (
        f"{dev}: Sr No. 999: Utterance_ID: dialogue {dup[col['Dialogue_ID']]} utterance "
        f"{dup[col['Utterance_ID']]} is listed twice (also at dev_sent_emo.csv, Sr No. {dup[0]})"
    ) in _error(capsys, root, folder)
    dev.write_text(original)
    (folder / "test_sent_emo.csv").unlink()
    assert f"{folder / 'test_sent_emo.csv'}: no such file" in _error(capsys, root, folder)


def test_more_than_nine_speakers_is_refused(release, tmp_path, capsys):
    root, _ = release
    folder = _csv_copy(root, tmp_path)
    train = folder / "train_sent_emo.csv"
    col = {c: i for i, c in enumerate(MELD_COLUMNS)}

    def ten_speakers(rows):
        for r in rows[1:]:
            if r[col["Dialogue_ID"]] == "0":
                proto = r
        extra = []
        for k in range(10):
            row = list(proto)
            row[col["Sr No."]] = str(900 + k)
            row[col["Utterance_ID"]] = str(50 + k)
            row[col["Speaker"]] = f"Guest {k}"
            extra.append(row)
        return rows + extra

    _rewrite(train, ten_speakers)
    err = _error(capsys, root, folder)
    assert f"{train}: Dialogue_ID 0: Speaker: 12 speakers (" in err
    assert err.endswith("expected at most 9 (slots s0..s8)")


def test_missing_wav_is_named_or_skipped(release, prepared, tmp_path, capsys):
    root, written = release
    wavs = tmp_path / "wav"
    shutil.copytree(root / "wav", wavs)
    victim = next(w for w in written if w["split"] == "dev" and w["utterance"] == 1)
    (wavs / "dev" / victim["wav"].name).unlink()
    with pytest.raises(DataError) as exc:
        build_corpus(root, wav_dir=wavs, progress=False)
    assert str(exc.value) == (
        f"{wavs / 'dev' / victim['wav'].name}: no such wav file "
        f"(dev_sent_emo.csv, Sr No. {victim['sr']})"
    )
    # --skip-missing-wavs: that utterance is dropped, the rest kept (from the cache)
    out = tmp_path / "skipped"
    cache = prepared.with_name(prepared.name + ".cache")
    argv = ["prepare-meld", str(root), str(out), "--wav-dir", str(wavs), "--skip-missing-wavs"]
    assert data_main(argv + ["--cache-dir", str(cache), "--no-progress"]) == 0
    dev = {d.id: d for d in read_native(out).splits["dev"]}
    name = f"dev_dia{victim['dialogue']}"
    kept = [w for w in _truth(written, "dev")[name] if w is not victim]
    assert [SEVEN[y] for y in dev[name].labels] == [w["emotion"] for w in kept]
    assert dev[name].sentences == [w["text"] for w in kept]


def test_scan_rejects_a_wrong_label_set(release):
    root, _ = release
    with pytest.raises(DataError, match="unknown label set 'iemocap_4' for MELD"):
        scan_meld(root, label_set="iemocap_4")
    with pytest.raises(DataError, match="no such folder"):
        scan_meld(root / "nowhere")


# -- train, then predict from wav files --------------------------------------------------------
def test_trained_model_predicts_a_test_dialogue_from_wavs(release, prepared, trained, tmp_path):
    from bridging.cli.predict_audio import main as predict_main
    from bridging.speech.inference import SpeechModel

    root, written = release
    assert trained.is_file()
    dialogue = read_native(prepared).splits["test"][0]
    utts = _truth(written, "test")[dialogue.id]
    assert {w["slot"] for w in utts} == {0, 1}
    manifest = tmp_path / "dialogue.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "speaker"])
        for u in utts:
            w.writerow([os.fspath(u["wav"]), f"s{u['slot']}"])
    out = tmp_path / "preds.csv"
    assert predict_main([str(trained), str(manifest), str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(utts)
    assert [r["speaker"] for r in rows] == [f"s{u['slot']}" for u in utts]
    probs = np.array([[float(r[f"prob_{n}"]) for n in SEVEN] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    assert [r["pred"] for r in rows] == [SEVEN[i] for i in probs.argmax(1)]
    model = SpeechModel(trained)
    assert model.speaker_names == [f"s{k}" for k in range(9)]
    # the wavs give the prepared features, and so the model's predictions on them
    np.testing.assert_allclose(
        model.features([u["wav"] for u in utts]), dialogue.features["a"], rtol=0, atol=1e-6
    )
    stored = model.predict_features(dialogue.features["a"], dialogue.speakers)
    np.testing.assert_allclose(probs, stored, atol=2e-6)
