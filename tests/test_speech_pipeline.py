"""Real speech end to end on a fake IEMOCAP release: prepare-iemocap -> train -> predict from
wav files (batch, causal, live) -> export; plus the raw reader's rules."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("opensmile")

from bridging.cli.data import main as data_main  # noqa: E402
from bridging.data.formats.native import read_native  # noqa: E402
from bridging.data.records import DataError  # noqa: E402
from bridging.speech.iemocap import (  # noqa: E402
    parse_evaluation,
    parse_transcription,
    scan_release,
    speaker_of,
    split_dialogues,
)
from bridging.speech.testing import write_fake_release  # noqa: E402

FOUR = ("hap", "sad", "neu", "ang")
SIX = FOUR + ("exc", "fru")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread (on a loaded 2-core machine, 2 OpenMP threads make
    each small PyG scatter wait ~100 ms for the second thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("iemocap")
    written = write_fake_release(root)
    return root, written


@pytest.fixture(scope="module")
def prepared(release, tmp_path_factory):
    root, written = release
    out = tmp_path_factory.mktemp("prepared") / "iemocap6"
    code = data_main(
        ["prepare-iemocap", str(root), str(out), "--labels", "iemocap_6", "--no-progress"]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory):
    from bridging.runs.config import compose
    from bridging.runs.experiment import train

    out = tmp_path_factory.mktemp("speech_run")
    cfg = compose(
        "train",
        [
            f"paths.output_dir={out}",
            "debug=tiny",
            "logger=none",
            "experiment=audio_only",
            "data=iemocap",
            f"data.path={prepared}",
            "data.label_set=iemocap_6",
            "modalities=[a]",
            "trainer.max_epochs=1",
            "model.seqcontext_nlayer=1",
            "model.gnn_nheads=2",
            "model.wp=2",
            "model.wf=3",
        ],
    )
    train(cfg)
    return out / "checkpoints" / "best.ckpt"


# -- the raw reader ------------------------------------------------------------------------
def test_file_formats_are_parsed(release):
    root, written = release
    d = written[0]["dialogue"]
    tr = parse_transcription(root / "Session1" / "dialog" / "transcriptions" / f"{d}.txt")
    ev = parse_evaluation(root / "Session1" / "dialog" / "EmoEvaluation" / f"{d}.txt")
    mine = [w for w in written if w["dialogue"] == d]
    assert set(tr) == set(ev) == {w["id"] for w in mine}  # "M: [LAUGHTER]" and C-E lines skipped
    for w in mine:
        assert tr[w["id"]][0] == pytest.approx(w["start"], abs=1e-4)
        assert tr[w["id"]][2] == w["text"]
        assert ev[w["id"]][2] == w["emotion"] and len(ev[w["id"]][3]) == 3


def test_speaker_comes_from_the_utterance_not_the_dialogue_name():
    assert speaker_of("Ses01F_impro01_M000") == "M"
    assert speaker_of("Ses01M_script01_1_F012") == "F"
    assert speaker_of("Ses05M_impro02_FXX0") == "F"
    with pytest.raises(DataError, match="cannot read the speaker"):
        speaker_of("Ses01F_impro01_X000")


def test_scan_orders_by_start_time_and_keeps_every_dialogue(release):
    root, written = release
    dialogues = scan_release(root)
    assert [d.id for d in dialogues] == sorted(
        {w["dialogue"] for w in written}, key=lambda n: (n[3:5], n)
    )
    for d in dialogues:
        truth = [w for w in written if w["dialogue"] == d.id]  # written in time order
        assert [u.id for u in d.utterances] == [w["id"] for w in truth]
        assert [u.speaker for u in d.utterances] == [w["speaker"] for w in truth]
        assert d.session == int(d.id[3:5])
    # the trap: a Ses0xF dialogue opens with an M utterance
    first = dialogues[0]
    assert first.id[5] != first.utterances[0].speaker


def test_split_rule():
    ids = [(f"d{i}", 1 + i // 30) for i in range(150)]  # 120 in sessions 1-4, 30 in 5
    s = split_dialogues(ids)
    assert s["dev"] == list(range(12)) and s["train"] == list(range(12, 120))
    assert s["test"] == list(range(120, 150))


def test_prepared_dataset(release, prepared):
    root, written = release
    corpus = read_native(prepared)
    assert corpus.label_set == "iemocap_6" and corpus.modalities == ["a"]
    spec = corpus.extractors["a"]
    assert spec["name"] == "egemaps" and spec["dim"] == 88
    assert spec["projection"]["kind"] == "standardize" and len(spec["projection"]["mean"]) == 88
    meta = json.loads((prepared / "meta.json").read_text())
    assert meta["extractors"]["a"] == spec
    sessions = {s: {int(d.id[3:5]) for d in ds} for s, ds in corpus.splits.items()}
    assert sessions["test"] == {5} and sessions["train"] | sessions["dev"] <= {1, 2, 3, 4}
    n_train = len(corpus.splits["train"]) + len(corpus.splits["dev"])
    assert len(corpus.splits["dev"]) == max(1, int(0.1 * n_train))
    ordered = [d for s in ("dev", "train") for d in corpus.splits[s]]
    assert [d.id for d in ordered] == sorted((d.id for d in ordered), key=lambda n: (n[3:5], n))
    by_id = {d.id: d for ds in corpus.splits.values() for d in ds}
    n_kept = 0
    for name in {w["dialogue"] for w in written}:
        truth = [w for w in written if w["dialogue"] == name and w["emotion"] in SIX]
        d = by_id[name]
        assert [SIX[y] for y in d.labels] == [w["emotion"] for w in truth]  # xxx, sur dropped
        assert ["MF"[s] for s in d.speakers] == [w["speaker"] for w in truth]
        assert d.sentences == [w["text"] for w in truth]
        n_kept += len(truth)
    assert n_kept == sum(len(d) for d in by_id.values())
    # standardised with the training split's statistics
    train_x = np.concatenate([d.features["a"] for d in corpus.splits["train"]])
    np.testing.assert_allclose(train_x.mean(0), 0, atol=1e-4)


def test_four_way_drops_exc_and_fru_and_resumes_from_the_cache(
    release, prepared, tmp_path, monkeypatch
):
    from bridging.speech import extractors

    root, written = release
    calls = []
    real = extractors.EGeMAPSExtractor.features_of

    def counting(self, path):
        calls.append(path)
        return real(self, path)

    monkeypatch.setattr(extractors.EGeMAPSExtractor, "features_of", counting)
    out = tmp_path / "iemocap4"
    # the 6-way run's cache (its default, next to its output) holds every 4-way utterance
    cache = prepared.with_name(prepared.name + ".cache")
    code = data_main(
        ["prepare-iemocap", str(root), str(out), "--cache-dir", str(cache), "--no-progress"]
    )
    assert code == 0 and calls == []  # nothing re-extracted
    corpus = read_native(out)
    labels = [FOUR[y] for ds in corpus.splits.values() for d in ds for y in d.labels]
    assert len(labels) == sum(w["emotion"] in FOUR for w in written)
    six = read_native(prepared, label_set="iemocap_4")  # the 6-way data, dropped to 4-way
    assert [d.id for d in six.splits["test"]] == [d.id for d in corpus.splits["test"]]


def test_prepare_errors_name_the_problem(release, tmp_path):
    root, written = release
    with pytest.raises(DataError, match="no Session1..Session5"):
        from bridging.speech.iemocap import build_corpus

        build_corpus(tmp_path)
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(root, broken)
    victim = next(w for w in written if w["emotion"] in FOUR and w["session"] == 2)
    wav = broken / os.path.relpath(victim["wav"], root)
    wav.write_bytes(b"RIFF....not audio")
    with pytest.raises(DataError, match=f"{victim['id']}.wav: unreadable audio"):
        build_corpus(broken, cache_dir=tmp_path / "c1", progress=False)
    wav.unlink()
    with pytest.raises(DataError, match=f"{victim['id']}.wav: no such wav file"):
        build_corpus(broken, progress=False)


# -- inference from wav files ----------------------------------------------------------------
def _manifest(folder, utterances):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "speaker"])
        for u in utterances:
            w.writerow([os.path.relpath(u["wav"], folder), u["speaker"]])


def test_model_predicts_a_folder_of_wavs(release, prepared, trained, tmp_path):
    from bridging.cli.predict_audio import main as predict_main
    from bridging.recipes import load_recipe
    from bridging.runs.evaluate import predict_rows
    from bridging.speech.inference import SpeechModel

    root, written = release
    corpus = read_native(prepared)
    dialogue = corpus.splits["test"][0]
    utts = [w for w in written if w["dialogue"] == dialogue.id and w["emotion"] in SIX]
    folder = root / "Session5" / "sentences" / "wav" / dialogue.id  # a folder of wav files
    _manifest(folder, utts)
    out = tmp_path / "preds.csv"
    code = predict_main([str(trained), str(folder), str(out)])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(utts)
    assert list(rows[0])[:4] == ["file", "speaker", "pred"] + [f"prob_{SIX[0]}"]
    assert [r["file"] for r in rows] == [os.path.basename(u["wav"]) for u in utts]
    probs = np.array([[float(r[f"prob_{n}"]) for n in SIX] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    assert [r["pred"] for r in rows] == [SIX[i] for i in probs.argmax(1)]
    # the features made from the wavs are those of the prepared dataset: same predictions as
    # the model on the stored features, and as bridging-predict on the test split
    model = SpeechModel(trained)
    np.testing.assert_allclose(
        model.features([u["wav"] for u in utts]), dialogue.features["a"], rtol=0, atol=1e-6
    )
    stored = model.predict_features(dialogue.features["a"], dialogue.speakers)
    np.testing.assert_allclose(probs, stored, atol=2e-6)
    from bridging.runs.evaluate import datamodule_for

    recipe = load_recipe(trained)
    dm = datamodule_for(recipe, None, ["a"])
    dm.setup()
    ref = [r for r in predict_rows(recipe, dm) if r["dialogue_id"] == dialogue.id]
    ref_probs = np.array([[float(r[f"prob_{n}"]) for n in SIX] for r in ref])
    np.testing.assert_allclose(probs, ref_probs, atol=1e-5)


def test_causal_live_and_exported_trained_model(release, prepared, trained, tmp_path):
    from bridging.cli.export import main as export_main
    from bridging.cli.predict_audio import main as predict_main
    from bridging.speech.export import load_exported
    from bridging.speech.inference import Session, SpeechModel

    root, written = release
    corpus = read_native(prepared)
    dialogue = corpus.splits["test"][0]
    utts = [w for w in written if w["dialogue"] == dialogue.id and w["emotion"] in SIX]
    csv_path = tmp_path / "conversation.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "speaker"])
        for u in utts:
            w.writerow([u["wav"], "MF".index(u["speaker"])])  # absolute paths, 0/1 speakers
    out = tmp_path / "causal.csv"
    assert predict_main([str(trained), str(csv_path), str(out), "--causal"]) == 0
    rows = list(csv.DictReader(out.open()))
    causal = np.array([[float(r[f"prob_{n}"]) for n in SIX] for r in rows])
    model = SpeechModel(trained)
    session = Session(model)
    for k, u in enumerate(utts):
        p = session.add(u["wav"], u["speaker"])
        assert p.index == k and p.speaker == u["speaker"]
        np.testing.assert_allclose(p.probabilities, causal[k], atol=2e-6)
        prefix = model.predict_features(dialogue.features["a"][: k + 1], dialogue.speakers[: k + 1])
        np.testing.assert_allclose(p.probabilities, prefix[-1], atol=1e-6)
    # waveforms in memory (a live microphone) work the same as files
    from bridging.speech.audio import read_audio

    live = Session(trained)
    for k, u in enumerate(utts):
        signal, rate = read_audio(u["wav"])
        p = live.add(signal, u["speaker"], sample_rate=rate)
        np.testing.assert_allclose(p.probabilities, causal[k], atol=2e-6)
    # exports of the trained model
    x = torch.from_numpy(dialogue.features["a"])[None]
    spk = torch.from_numpy(dialogue.speakers)[None]
    batch = np.log(model.predict_features(dialogue.features["a"], dialogue.speakers))
    for name in ("model.onnx", "model.pt"):
        path = tmp_path / name
        assert export_main([str(trained), str(path)]) == 0
        got = load_exported(path)(x.numpy(), spk.numpy())
        np.testing.assert_allclose(got, batch, atol=1e-4)
        meta = json.loads(path.with_name(name + ".json").read_text())
        assert meta["label_names"] == list(SIX) and meta["extractor"]["name"] == "egemaps"


def test_checkpoint_without_extractor_is_refused(trained, tmp_path):
    from bridging.speech.inference import SpeechModel

    ckpt = torch.load(trained, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["facts"]["extractors"] = {}
    bare = tmp_path / "bare.ckpt"
    torch.save(ckpt, bare)
    with pytest.raises(DataError, match="stores no audio feature extractor"):
        SpeechModel(bare)


def test_predict_audio_groups_dialogues_and_reports_bad_input(release, trained, tmp_path, capsys):
    from bridging.cli.predict_audio import main as predict_main
    from bridging.speech.inference import SpeechModel

    root, written = release
    test_dialogues = sorted({w["dialogue"] for w in written if w["session"] == 5})
    utts = [w for w in written if w["dialogue"] in test_dialogues and w["emotion"] in FOUR]
    csv_path = tmp_path / "two.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dialogue", "file", "speaker"])
        for u in utts:
            w.writerow([u["dialogue"], u["wav"], u["speaker"]])
    out = tmp_path / "two_preds.csv"
    assert predict_main([str(trained), str(csv_path), str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["dialogue"] for r in rows] == [u["dialogue"] for u in utts]
    model = SpeechModel(trained)
    for name in test_dialogues:
        mine = [u for u in utts if u["dialogue"] == name]
        alone = model.predict_files([u["wav"] for u in mine], [u["speaker"] for u in mine])
        got = np.array(
            [[float(r[f"prob_{n}"]) for n in SIX] for r in rows if r["dialogue"] == name]
        )
        np.testing.assert_allclose(got, alone, atol=2e-6)
    # an existing OUTPUT is refused unless --force; an input never, even forced
    before = out.read_bytes()
    assert predict_main([str(trained), str(csv_path), str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"bridging-predict-audio: error: {out}: exists (a file); refusing to overwrite it "
        "(give --force to replace it)"
    )
    assert out.read_bytes() == before
    assert predict_main([str(trained), str(csv_path), str(out), "--force"]) == 0
    assert out.read_bytes() == before  # the same predictions, written again
    for own in (csv_path, trained):
        kept = own.read_bytes()
        assert predict_main([str(trained), str(csv_path), str(own), "--force"]) == 2
        assert "refusing to write over an input, even when forced" in capsys.readouterr().err
        assert own.read_bytes() == kept
    # errors: a broken wav is named; a manifest without speakers; a missing option
    out = tmp_path / "never_written.csv"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFFxxxxWAVEjunk")
    (bad / "manifest.csv").write_text("file,speaker\nbroken.wav,M\n")
    assert predict_main([str(trained), str(bad), str(out)]) == 2
    assert "broken.wav: unreadable audio" in capsys.readouterr().err
    (bad / "manifest.csv").write_text("file\nbroken.wav\n")
    assert predict_main([str(trained), str(bad), str(out)]) == 2
    assert "no 'speaker' column" in capsys.readouterr().err
    (bad / "manifest.csv").write_text("file,speaker\nbroken.wav,Q\n")
    assert predict_main([str(trained), str(bad), str(out)]) == 2
    assert "speaker 'Q'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict_main([str(trained), str(bad)])
    assert "the following arguments are required: OUTPUT" in capsys.readouterr().err
