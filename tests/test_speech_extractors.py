"""Audio reading and the feature extractors: registry, saved specs, resampling, errors,
parallel and cached extraction, openSMILE and a tiny HuBERT."""

from __future__ import annotations

import json
import shutil
import wave

import numpy as np
import pytest
import torch

from bridging.data.records import DataError
from bridging.speech.audio import AudioError, load_audio, read_audio, resample, write_wav
from bridging.speech.extractors import (
    EXTRACTORS,
    Extractor,
    ExtractorError,
    FeaturePipeline,
    create_extractor,
    extract_files,
    pipeline_from_spec,
    register,
)
from bridging.speech.testing import utterance_sound

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wavs")
    return [
        write_wav(d / f"u{i}.wav", utterance_sound(e, 0.4, RNG))
        for i, e in enumerate(["hap", "sad", "neu", "ang", "hap", "neu"])
    ]


# -- audio ----------------------------------------------------------------------------------
def test_wav_round_trip_stereo_and_resampling(tmp_path):
    x = utterance_sound("neu", 0.5, RNG)
    p = write_wav(tmp_path / "a.wav", x)
    y, rate = read_audio(p)
    assert rate == 16000 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1 / 32767 + 1e-6)
    stereo = tmp_path / "stereo.wav"
    pcm = (np.stack([x, 0 * x], 1) * 32767).astype("<i2")
    with wave.open(str(stereo), "wb") as fh:
        fh.setnchannels(2)
        fh.setsampwidth(2)
        fh.setframerate(8000)
        fh.writeframes(pcm.tobytes())
    z, rate = read_audio(stereo)
    assert rate == 8000 and z.shape == x.shape  # channels averaged
    np.testing.assert_allclose(z, x / 2, atol=1e-4)
    up = load_audio(stereo, 16000)  # resampled to what the extractor wants
    assert up.shape == (2 * len(x),)
    np.testing.assert_allclose(up, resample(z, 8000, 16000))


def test_bad_audio_files_are_named(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: no such audio file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: empty file"):
        read_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not a wav file at all")
    with pytest.raises(AudioError, match="junk.wav: unreadable audio"):
        read_audio(tmp_path / "junk.wav")
    silent = write_wav(tmp_path / "nothing.wav", np.zeros(0))
    with pytest.raises(AudioError, match="nothing.wav: no audio samples"):
        read_audio(silent)
    assert issubclass(AudioError, DataError)


# -- registry and specs -----------------------------------------------------------------------
@register("test-rms")
class RMSExtractor(Extractor):
    parallel = "thread"

    def __init__(self, frames: int = 4):
        super().__init__()
        self.params = {"frames": int(frames)}
        self.dim = int(frames)

    def extract(self, signal):
        return np.array([np.sqrt(np.mean(c**2)) for c in np.array_split(signal, self.dim)])


def test_registry_cache_and_thread_parallelism(wavs, tmp_path):
    assert {"egemaps", "compare", "hubert", "wav2vec2", "test-rms"} <= set(EXTRACTORS)
    with pytest.raises(ExtractorError, match="unknown audio extractor 'nope'"):
        create_extractor("nope")
    ex = create_extractor("test-rms", frames=3)
    serial = extract_files(ex, wavs)
    assert serial.shape == (len(wavs), 3)
    cache = tmp_path / "cache"
    np.testing.assert_array_equal(extract_files(ex, wavs, cache_dir=cache, workers=2), serial)
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert len(list(folder.glob("*.npy"))) == len(wavs)
    assert json.loads((folder / "spec.json").read_text())["name"] == "test-rms"
    calls = []
    ex.extract = lambda s: calls.append(1) or np.zeros(3)
    np.testing.assert_array_equal(extract_files(ex, wavs, cache_dir=cache), serial)
    assert calls == []  # all from the cache


def test_projection_is_fitted_saved_and_reloaded(wavs):
    pipe = FeaturePipeline(create_extractor("test-rms", frames=5))
    raw = pipe.raw_features(wavs)
    pipe.fit_standardize(raw)
    spec = json.loads(json.dumps(pipe.spec))  # through JSON, as in meta.json / checkpoints
    assert spec["projection"]["kind"] == "standardize" and spec["projection"]["fitted_on"]
    again = pipeline_from_spec(spec)
    np.testing.assert_array_equal(again.features(wavs), pipe.features(wavs))
    np.testing.assert_allclose(pipe.features(wavs).mean(0), 0, atol=1e-5)
    bad = dict(spec, projection={"kind": "pca"})
    with pytest.raises(ExtractorError, match="unknown feature projection 'pca'"):
        pipeline_from_spec(bad)


# -- openSMILE ------------------------------------------------------------------------------
def test_egemaps_spec_resampling_errors_and_processes(wavs, tmp_path):
    pytest.importorskip("opensmile")
    ex = create_extractor("egemaps")
    spec = ex.spec()
    assert spec["dim"] == 88 and spec["params"]["feature_set"] == "eGeMAPSv02"
    assert spec["sample_rate"] == 16000 and spec["check"]["feature_names_sha1"]
    pipe = pipeline_from_spec(json.loads(json.dumps(spec)))
    f = pipe.features_of(wavs[0])
    assert f.shape == (88,) and np.isfinite(f).all()
    # a file at 8 kHz is resampled to 16 kHz: same as resampling the signal ourselves
    x, _ = read_audio(wavs[1])
    low = resample(x, 16000, 8000)
    p8 = write_wav(tmp_path / "low.wav", low, 8000)
    np.testing.assert_allclose(
        pipe.features_of(p8), pipe.features_of_signal(read_audio(p8)[0], 8000), atol=1e-5
    )
    short = write_wav(tmp_path / "short.wav", x[:400])  # 25 ms
    with pytest.raises(AudioError, match="short.wav: 0.025 s of audio, shorter than"):
        pipe.features_of(short)
    tampered = json.loads(json.dumps(spec))
    tampered["check"]["feature_names_sha1"] = "0" * 40
    with pytest.raises(ExtractorError, match="not the same feature extraction"):
        pipeline_from_spec(tampered)
    # worker processes give the same features as the serial run
    serial = extract_files(pipe, wavs)
    np.testing.assert_array_equal(extract_files(pipe, wavs, workers=2), serial)


def test_compare_functionals():
    pytest.importorskip("opensmile")
    ex = create_extractor("compare")
    f = ex.features_of_signal(utterance_sound("ang", 0.5, RNG), 16000)
    assert ex.dim == 6373 and f.shape == (6373,) and np.isfinite(f).all()


# -- self-supervised encoders -----------------------------------------------------------------
def tiny_hubert(folder, seed=0):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.HubertConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    transformers.HubertModel(cfg).save_pretrained(folder)
    return folder


def test_hubert_from_a_local_folder(tmp_path, wavs):
    folder = tiny_hubert(tmp_path / "hubert")
    from transformers import HubertModel

    ref = HubertModel.from_pretrained(folder).eval()
    x, _ = read_audio(wavs[0])
    with torch.no_grad():
        out = ref(torch.from_numpy(x)[None], output_hidden_states=True)
    last = create_extractor("hubert", path=str(folder))
    np.testing.assert_allclose(
        last.features_of(wavs[0]), out.last_hidden_state[0].mean(0).numpy(), atol=1e-5
    )
    layer1 = create_extractor("hubert", path=str(folder), layer=1)
    np.testing.assert_allclose(
        layer1.features_of(wavs[0]), out.hidden_states[1][0].mean(0).numpy(), atol=1e-5
    )
    spec = json.loads(json.dumps(layer1.spec()))
    assert spec["dim"] == 16 and spec["params"]["layer"] == 1
    assert len(spec["check"]["weights_sha256"]) == 64 and spec["projection"] is None
    # the folder moved: override the path; the weights must be the same
    moved = shutil.copytree(folder, tmp_path / "moved")
    shutil.rmtree(folder)
    pipe = pipeline_from_spec(spec, {"path": str(moved)})
    np.testing.assert_allclose(pipe.features_of(wavs[0]), layer1.features_of(wavs[0]))
    tiny_hubert(tmp_path / "other", seed=1)
    with pytest.raises(ExtractorError, match="weights_sha256 differs.*different model folder"):
        pipeline_from_spec(spec, {"path": str(tmp_path / "other")})
    with pytest.raises(ExtractorError, match="layer 5 asked for"):
        create_extractor("hubert", path=str(moved), layer=5)
    with pytest.raises(ExtractorError, match="a 'hubert' model, extractor wav2vec2"):
        create_extractor("wav2vec2", path=str(moved))
    with pytest.raises(ExtractorError, match="no config.json"):
        create_extractor("hubert", path=str(tmp_path))


def tiny_sentence_transformer(folder):
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = "utterance of feeling hap sad neu ang exc fru xxx sur a b c".split()
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    ).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=12,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(folder)
    (folder / "1_Pooling").mkdir()
    (folder / "2_Normalize").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 12, "pooling_mode_mean_tokens": True})
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    types = ["Transformer", "Pooling", "Normalize"]
    paths = ["", "1_Pooling", "2_Normalize"]
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": i, "name": str(i), "path": p, "type": f"sentence_transformers.models.{t}"}
                for i, (t, p) in enumerate(zip(types, paths))
            ]
        )
    )
    return folder


def test_sentence_embeddings_from_a_local_folder(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from bridging.speech.text import SentenceEncoder

    folder = tiny_sentence_transformer(tmp_path / "st")
    enc = SentenceEncoder(folder)
    sentences = ["a b", "utterance of feeling sad c c c", ""]
    got = enc.encode(sentences, batch_size=2)
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    for s, row in zip(sentences, got):  # one at a time: no padding
        with torch.no_grad():
            h = model(**tok([s], return_tensors="pt")).last_hidden_state[0].mean(0)
        np.testing.assert_allclose(row, (h / h.norm()).numpy(), atol=1e-5)
    assert enc.spec()["dim"] == 12 and enc.spec()["params"]["pooling"] == "mean_tokens"


def test_prepare_iemocap_with_hubert_and_text_features(tmp_path):
    from bridging.cli.data import main as data_main
    from bridging.data.formats.native import read_native
    from bridging.speech.testing import write_fake_release

    folder = tiny_hubert(tmp_path / "hubert")
    write_fake_release(tmp_path / "release", dialogues_per_session=(2, 0, 0, 0, 1), utterances=3)
    out = tmp_path / "prepared"
    code = data_main(
        [
            "prepare-iemocap",
            str(tmp_path / "release"),
            str(out),
            "--labels",
            "iemocap_6",
            "--audio-features",
            "hubert",
            "--hubert-path",
            str(folder),
            "--hubert-layer",
            "2",
            "--text-model",
            str(tiny_sentence_transformer(tmp_path / "st")),
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    corpus = read_native(out)
    spec = corpus.extractors["a"]
    assert spec["name"] == "hubert" and spec["params"]["layer"] == 2 and spec["dim"] == 16
    assert corpus.splits["train"][0].features["a"].shape[1] == 16
    assert {s: len(v) for s, v in corpus.splits.items()} == {"train": 1, "dev": 1, "test": 1}
    assert corpus.modalities == ["a", "t"] and corpus.extractors["t"]["dim"] == 12
    d = corpus.splits["test"][0]
    from bridging.speech.text import SentenceEncoder

    np.testing.assert_allclose(
        d.features["t"], SentenceEncoder(tmp_path / "st").encode(d.sentences), atol=1e-6
    )
