"""Causal / live inference and TorchScript / ONNX exports equal the PyTorch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridging.data.datamodule import DatasetFacts
from bridging.models.gnn import GNN
from bridging.models.graph import build_graph_flat
from bridging.recipes.teacher import TeacherRecipe
from bridging.speech.export import (
    DenseCOGMEN,
    export_onnx,
    export_torchscript,
    load_exported,
    reference_log_probs,
)
from bridging.speech.inference import Session, SpeechModel

LABELS = ["hap", "sad", "neu", "ang"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: one intra-op thread (on a loaded 2-core machine, 2 OpenMP threads make
    each small PyG scatter wait ~100 ms for the second thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_recipe(modalities=("a",), seed=0, **model):
    sizes = {"a": 88, "t": 16, "v": 24}
    facts = DatasetFacts(
        modalities=list(modalities),
        feature_sizes={m: sizes[m] for m in modalities},
        label_set="iemocap_4",
        label_names=LABELS,
        n_speakers=2,
        speaker_names=["M", "F"],
        class_counts=[1, 1, 1, 1],
        source_format="test",
        path=None,
        extractors={},
    )
    torch.manual_seed(seed)
    cfg = {"seqcontext_nlayer": 2, "gnn_nheads": 3, "drop_rate": 0.1, **model}
    recipe = TeacherRecipe(facts=facts.to_dict(), modalities=list(modalities), model=cfg)
    gcn = recipe.model.gcn
    if gcn is not None:  # non-trivial BatchNorm statistics
        gcn.bn.running_mean.normal_(0, 0.5)
        gcn.bn.running_var.uniform_(0.5, 2.0)
    return recipe.eval()


def dialogue(t, d=88, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(t, d, generator=gen).numpy(), torch.randint(0, 2, (t,), generator=gen)


@pytest.mark.parametrize("window", [{}, {"wf": 0}, {"wp": 0, "wf": 2}])
def test_session_equals_batch_mode_over_the_prefix(window):
    recipe = make_recipe(wp=3, wf=2)
    model = SpeechModel(recipe, load_extractor=False)
    x, spk = dialogue(12)
    causal = model.predict_prefixes(x, spk.tolist(), **window)
    session = Session(model, **window)
    for k in range(len(x)):
        p = session.add_features(x[k], ["M", "F"][int(spk[k])])
        prefix = model.predict_features(x[: k + 1], spk[: k + 1].tolist(), **window)[-1]
        np.testing.assert_allclose(p.probabilities, prefix, atol=1e-6)
        np.testing.assert_allclose(p.probabilities, causal[k], atol=1e-5)
        assert p.label == LABELS[int(np.argmax(prefix))] and p.index == k
    assert model.model.wp == 3 and model.model.wf == 2  # windows restored
    # the causal mode is not the batch mode: later utterances change earlier predictions
    full = model.predict_features(x, spk.tolist(), **window)
    np.testing.assert_allclose(causal[-1], full[-1], atol=1e-5)
    assert not np.allclose(causal[0], full[0], atol=1e-4)


def test_session_history_limit_and_reference_padding():
    recipe = make_recipe(rnn="transformer", pad_mode="reference", wp=2, wf=2)
    model = SpeechModel(recipe, load_extractor=False)
    x, spk = dialogue(7)
    causal = model.predict_prefixes(x, spk.tolist())  # one prefix at a time (reference padding)
    session = Session(model)
    for k in range(len(x)):
        np.testing.assert_allclose(
            session.add_features(x[k], int(spk[k])).probabilities, causal[k], atol=1e-5
        )
    short = Session(model, max_history=3)
    for k in range(len(x)):
        p = short.add_features(x[k], int(spk[k]))
    np.testing.assert_allclose(
        p.probabilities, model.predict_features(x[-3:], spk[-3:].tolist())[-1], atol=1e-6
    )


def test_which_window_is_past_only():
    """Messages flow source -> target, edges i -> j for j in [i - wp, i + wf]: utterance j
    hears [j - wf, j + wp]. wp = 0 makes the graph causal; wf = 0 does not."""
    torch.manual_seed(0)
    gnn = GNN(8, 16, 8, heads=2).eval()
    t = 10
    x, spk = torch.randn(t, 8), torch.randint(0, 2, (t,))
    x2 = x.clone()
    x2[-1] += 1.0  # change the last utterance only
    for (wp, wf), causal in (((0, 5), True), ((5, 0), False)):
        ei, et = build_graph_flat(torch.tensor([t]), spk, wp, wf, 2)
        with torch.no_grad():
            changed = (gnn(x, ei, et) - gnn(x2, ei, et)).abs().sum(1) > 1e-6
        assert bool(changed[:-1].any()) is not causal


CONFIGS = {
    "student_L4_H7": {"seqcontext_nlayer": 4, "gnn_nheads": 7},
    "lstm_concat_highway": {
        "rnn": "lstm",
        "concat_gin_gout": True,
        "use_highway": True,
        "wp": -1,
        "wf": 1,
    },
    "gru_nognn": {"rnn": "gru", "gnn": "none"},
    # the multi-party options (MELD): relations by same/other speaker, RGCN basis weights
    "same_other": {"relations": "same_other"},
    "bases": {"num_bases": 3, "wp": 2, "wf": 1},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_dense_form_equals_the_pyg_model(name):
    recipe = make_recipe(**CONFIGS[name])
    dense = DenseCOGMEN(recipe.model)
    for t in (1, 6, 23):
        x, spk = dialogue(t, seed=t)
        x = torch.from_numpy(x)[None]
        with torch.no_grad():
            got = dense(x, spk[None])
        torch.testing.assert_close(
            got, reference_log_probs(recipe, x, spk[None]), atol=1e-5, rtol=0
        )


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("name", ["student_L4_H7", "lstm_concat_highway", "same_other", "bases"])
def test_exports_equal_the_pytorch_model(tmp_path, fmt, name):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    recipe = make_recipe(**CONFIGS[name])
    path = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    (export_onnx if fmt == "onnx" else export_torchscript)(recipe, path)
    run = load_exported(path)
    for t in (1, 5, 31):  # T is dynamic (the export traced T = 7)
        x, spk = dialogue(t, seed=10 + t)
        ref = reference_log_probs(recipe, torch.from_numpy(x)[None], spk[None]).numpy()
        np.testing.assert_allclose(run(x[None], spk[None].numpy()), ref, atol=1e-4, rtol=0)


def test_export_of_a_multimodal_model_is_speech_only(tmp_path):
    """An av model (e.g. masked training) exports with video zero-filled inside."""
    recipe = make_recipe(modalities=("a", "v"), wp=2, wf=1)
    path = export_torchscript(recipe, tmp_path / "av.pt", wf=0)
    x, spk = dialogue(9)
    ref = reference_log_probs(recipe, torch.from_numpy(x)[None], spk[None], wf=0).numpy()
    np.testing.assert_allclose(load_exported(path)(x[None], spk[None].numpy()), ref, atol=1e-4)
    model = SpeechModel(recipe, load_extractor=False)
    np.testing.assert_allclose(
        np.log(model.predict_features(x, spk.tolist(), wf=0)), ref, atol=1e-5
    )
