"""Export a speech-only COGMEN to TorchScript and ONNX, graph layers included.

PyG's message-passing layers do not export as they are (scatter over an edge list built in
Python-level code), so the export goes through :class:`DenseCOGMEN`, an exact re-statement
of COGMEN for **one dialogue** with dense tensor operations only:

- input ``x`` float32 [1, T, D] (the audio features, as the model's input; the other
  modalities of a multimodal model are zero columns added inside) and ``speakers`` int64
  [1, T]; output ``log_probs`` [T, C];
- sequence context: the transformer encoder layers written out (in-projection, softmax
  attention, out-projection, post-norm, feed-forward), or the bidirectional LSTM/GRU;
- graph: a [T, T] window mask (utterance j receives from i when j - i in [-wp, wf], as
  bridging's edge list, self-loops included) and the relation of every pair,
  ``(spk_i * S + spk_j) * 2 + (i >= j)``;
- RGCNConv (mean per relation, root weight, bias) as a batched [R, T, T] x [T, g] product;
  TransformerConv (H heads, concat, skip) as masked dense attention; BatchNorm1d in eval
  mode; LeakyReLU; the classifier.

Same parameters (shared with the model at wrapping time, copied at export), same results
within float rounding (tested at atol 1e-4 against the PyTorch model, for TorchScript and for
ONNX through onnxruntime). Dialogue length T is dynamic in both exports. The feature
extractor (openSMILE, HuBERT) is not part of the exported graph: the sidecar JSON
``<file>.json`` holds its spec, the label names and the speaker names, and the ONNX file
carries the same JSON in its metadata (key ``bridging``).

A model trained with ``data.normalize`` other than ``none`` carries its normalisation in the
graph (:class:`bridging.data.normalize.DialogueNormalizer`, first): ``global`` with the
training statistics, ``speaker`` pooled over the given dialogue's utterances of each
speaker, ``online`` causal; the input ``x`` is the raw features.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bridging.models.cogmen import COGMEN
from bridging.models.graph import relation_of


class _EncoderLayer(nn.Module):
    """nn.TransformerEncoderLayer (post-norm, ReLU, eval) on one unpadded sequence [T, d]."""

    def __init__(self, layer: nn.TransformerEncoderLayer):
        super().__init__()
        attn = layer.self_attn
        self.heads = int(attn.num_heads)
        self.d = int(attn.embed_dim)
        self.in_proj_weight = attn.in_proj_weight
        self.in_proj_bias = attn.in_proj_bias
        self.out_proj = attn.out_proj
        self.linear1, self.linear2 = layer.linear1, layer.linear2
        self.norm1, self.norm2 = layer.norm1, layer.norm2

    def forward(self, h: Tensor) -> Tensor:
        dh = self.d // self.heads
        qkv = F.linear(h, self.in_proj_weight, self.in_proj_bias)  # [T, 3d]
        q, k, v = qkv.reshape(-1, 3, self.heads, dh).permute(1, 2, 0, 3).unbind(0)  # [H, T, dh]
        scores = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(dh)
        o = torch.matmul(torch.softmax(scores, dim=-1), v)  # [H, T, dh]
        o = self.out_proj(o.permute(1, 0, 2).reshape(-1, self.d))
        h = self.norm1(h + o)
        return self.norm2(h + self.linear2(F.relu(self.linear1(h))))


class DenseCOGMEN(nn.Module):
    """COGMEN for one dialogue with dense tensor ops: (x [1, T, D_a], speakers [1, T]) ->
    log_probs [T, C]. ``input_slice``: where the audio features sit in the model's input
    (the other modalities are zero-filled); ``wp``/``wf``: graph windows (default: the
    model's)."""

    def __init__(
        self,
        model: COGMEN,
        audio_slice: tuple[int, int] | None = None,
        wp: int | None = None,
        wf: int | None = None,
        normalizer: nn.Module | None = None,
    ):
        super().__init__()
        model = model.eval()
        #: the model's feature normalisation of the audio (bridging.data.normalize), or None
        self.normalizer = normalizer
        self.input_size = model.input_size
        lo, hi = audio_slice if audio_slice is not None else (0, model.input_size)
        self.a_lo, self.a_hi = int(lo), int(hi)
        self.n_speakers = model.n_speakers
        self.wp = model.wp if wp is None else int(wp)
        self.wf = model.wf if wf is None else int(wf)
        seq = model.rnn
        self.seq_kind = seq.kind
        if seq.kind == "transformer":
            self.layers = nn.ModuleList(_EncoderLayer(la) for la in seq.transformer_encoder.layers)
            self.seq_out = seq.transformer_out
        else:
            self.rnn = seq.rnn
        self.has_gnn = model.gcn is not None
        self.concat = bool(model.concat_gin_gout)
        if self.has_gnn:
            g = model.gcn
            self.n_rel = g.num_relations
            self.relations = model.relations
            # [R, in, out]; with basis decomposition the combined weight of every relation
            self.register_buffer("rgcn_weight", g.relation_weight().detach().clone())
            self.rgcn_root = g.conv1.root  # [in, out]
            self.rgcn_bias = g.conv1.bias
            c2 = g.conv2
            self.heads, self.c = int(c2.heads), int(c2.out_channels)
            self.lin_query, self.lin_key = c2.lin_query, c2.lin_key
            self.lin_value, self.lin_skip = c2.lin_value, c2.lin_skip
            self.bn = g.bn
        self.clf = model.clf

    def graph(self, speakers: Tensor) -> tuple[Tensor, Tensor]:
        """Window mask [T_target, T_source] and relation types [T_target, T_source]."""
        t = speakers.shape[0]
        pos = torch.arange(t, device=speakers.device)
        tgt, src = pos[:, None], pos[None, :]
        d = tgt - src  # edge src -> tgt exists when tgt in [src - wp, src + wf]
        ok = torch.ones_like(d, dtype=torch.bool)
        if self.wp >= 0:
            ok = ok & (d >= -self.wp)
        if self.wf >= 0:
            ok = ok & (d <= self.wf)
        spk = speakers.long()
        rel = relation_of(spk[None, :], spk[:, None], src >= tgt, self.n_speakers, self.relations)
        return ok, rel

    def forward(self, x: Tensor, speakers: Tensor) -> Tensor:
        if self.normalizer is not None:
            x = self.normalizer(x, speakers.long())
        x = x[0]
        spk = speakers[0]
        if self.a_lo != 0 or self.a_hi != self.input_size:
            t = x.shape[0]
            left = x.new_zeros(t, self.a_lo)
            right = x.new_zeros(t, self.input_size - self.a_hi)
            x = torch.cat([left, x, right], dim=1)
        if self.seq_kind == "transformer":
            h = x
            for layer in self.layers:
                h = layer(h)
            h = self.seq_out(h)
        else:
            h = self.rnn(x[None])[0][0]
        feats = h
        if self.has_gnn:
            ok, rel = self.graph(spk)
            # RGCNConv: per relation, mean over the sources of each target, then W_r
            rels = torch.arange(self.n_rel, device=x.device)[:, None, None]
            adj = ((rel[None] == rels) & ok[None]).to(h.dtype)  # [R, T, T]
            adj = adj / adj.sum(-1, keepdim=True).clamp(min=1.0)
            msg = torch.matmul(adj, h)  # [R, T, in]
            h = torch.matmul(msg, self.rgcn_weight).sum(0) + h @ self.rgcn_root + self.rgcn_bias
            # TransformerConv: each target attends over its sources
            q = self.lin_query(h).reshape(-1, self.heads, self.c).transpose(0, 1)
            k = self.lin_key(h).reshape(-1, self.heads, self.c).transpose(0, 1)
            v = self.lin_value(h).reshape(-1, self.heads, self.c).transpose(0, 1)
            scores = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.c)  # [H, T, T]
            scores = scores.masked_fill(~ok[None], float("-inf"))
            o = torch.matmul(torch.softmax(scores, dim=-1), v)  # [H, T, C]
            h = o.transpose(0, 1).reshape(-1, self.heads * self.c) + self.lin_skip(h)
            h = F.leaky_relu(self.bn(h), negative_slope=0.01)
            clf_in = torch.cat([feats, h], dim=-1) if self.concat else h
        else:
            clf_in = h
        return F.log_softmax(self.clf(clf_in), dim=-1)


def check_finite_weights(recipe, where) -> None:
    """Refuse (a DataError naming ``where``, the first tensor and the count) a model whose
    weights or buffers are not all finite (NaN or inf: its training diverged): its export
    would compute NaN, and NaN against NaN compares as no difference."""
    from bridging.data.records import DataError

    bad = []
    model = recipe.model
    for name, t in [*model.named_parameters("model"), *model.named_buffers("model")]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad.append((name, int((~torch.isfinite(t)).sum()), t.numel()))
    if bad:
        name, n, total = bad[0]
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise DataError(
            f"{where}: the model's weights are not finite: {name} holds {n} nan or inf of "
            f"{total} values{more}; refusing to export it: a model whose training diverged"
        )


def audio_slice(recipe) -> tuple[int, int]:
    """(start, end) columns of the audio features in the recipe's model input."""
    start = 0
    for m in recipe.modalities:  # already in the order a, t, v
        size = recipe.facts.feature_sizes[m]
        if m == "a":
            return start, start + size
        start += size
    raise ValueError(f"the model takes {recipe.modalities}, not audio")


def dense_speech_model(recipe, wp: int | None = None, wf: int | None = None) -> DenseCOGMEN:
    """A detached DenseCOGMEN (a deep copy, eval mode) taking audio features only."""
    from bridging.data.normalize import Normalization

    model = copy.deepcopy(recipe.model).eval().cpu()
    norm = Normalization.from_dict(recipe.facts.normalization, "checkpoint")
    normalizer = norm.module("a", model.n_speakers) if norm.active else None
    return DenseCOGMEN(model, audio_slice(recipe), wp=wp, wf=wf, normalizer=normalizer).eval()


def example_inputs(dim: int, t: int = 7, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, t, dim, generator=gen), torch.randint(0, 2, (1, t), generator=gen)


def export_metadata(recipe, dense: DenseCOGMEN, fmt: str) -> dict:
    facts = recipe.facts
    return {
        "format": fmt,
        "inputs": {"x": ["1", "T", int(facts.feature_sizes["a"])], "speakers": ["1", "T"]},
        "outputs": {"log_probs": ["T", facts.n_classes]},
        "label_set": facts.label_set,
        "label_names": list(facts.label_names),
        "speaker_names": list(facts.speaker_names),
        "modalities": list(recipe.modalities),
        "wp": dense.wp,
        "wf": dense.wf,
        "extractor": (facts.extractors or {}).get("a"),
        "normalize": (facts.normalization or {}).get("mode", "none"),
        "checkpoint": getattr(recipe, "checkpoint_path", None),
    }


def _quiet():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


def export_torchscript(recipe, path, wp=None, wf=None) -> Path:
    """Trace the dense speech-only model to TorchScript at ``path`` (+ ``path.json``)."""
    import io

    from bridging.utils.files import atomic_write_bytes, atomic_write_json

    path = Path(path)
    dense = dense_speech_model(recipe, wp, wf)
    example = example_inputs(int(recipe.facts.feature_sizes["a"]))
    ctx = _quiet()
    try:
        with torch.no_grad():
            traced = torch.jit.trace(dense, example, check_trace=False)
        # into memory first: torch's zip writer, short of room on a file, throws from its
        # destructor and aborts the process (no Python error, the temporary file left)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    finally:
        ctx.__exit__(None, None, None)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_json(
        path.with_name(path.name + ".json"), export_metadata(recipe, dense, "torchscript")
    )
    return path


def export_onnx(recipe, path, wp=None, wf=None, opset: int = 17) -> Path:
    """Export the dense speech-only model to ONNX at ``path`` (+ ``path.json``); T dynamic."""
    from bridging.utils.files import atomic_output, atomic_write_json

    path = Path(path)
    dense = dense_speech_model(recipe, wp, wf)
    example = example_inputs(int(recipe.facts.feature_sizes["a"]))
    meta = export_metadata(recipe, dense, "onnx")
    with atomic_output(path) as tmp:
        _write_onnx(dense, example, meta, tmp, opset)
    atomic_write_json(path.with_name(path.name + ".json"), meta)
    return path


def _write_onnx(dense, example, meta: dict, tmp, opset: int) -> None:
    """The ONNX export of ``dense`` into ``tmp``, with ``meta`` in its metadata_props."""
    ctx = _quiet()
    try:
        with torch.no_grad():
            torch.onnx.export(
                dense,
                example,
                os.fspath(tmp),
                dynamo=False,
                input_names=["x", "speakers"],
                output_names=["log_probs"],
                dynamic_axes={"x": {1: "T"}, "speakers": {1: "T"}, "log_probs": {0: "T"}},
                opset_version=opset,
            )
    finally:
        ctx.__exit__(None, None, None)
    try:
        import onnx

        proto = onnx.load(os.fspath(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "bridging", json.dumps(meta)
        onnx.save(proto, os.fspath(tmp))
    except ImportError:  # pragma: no cover - onnx comes with the speech extra
        pass


def reference_log_probs(recipe, x: Tensor, speakers: Tensor, wp=None, wf=None) -> Tensor:
    """The PyTorch model's speech-only log-probabilities [T, C] for one dialogue
    (x [1, T, D_a], speakers [1, T]), the other modalities zeroed; the features normalised
    as the model's data (:meth:`bridging.data.normalize.Normalization.apply_padded`)."""
    from bridging.data.batch import DialogueBatch
    from bridging.data.normalize import Normalization
    from bridging.speech.inference import graph_window

    t = x.shape[1]
    x = x.float()
    norm = Normalization.from_dict(recipe.facts.normalization, "checkpoint")
    if norm.active:
        n_spk = recipe.model.n_speakers
        x = norm.apply_padded({"a": x}, torch.tensor([t]), speakers.long(), n_spk)["a"]
    batch = DialogueBatch(
        features={"a": x},
        lengths=torch.tensor([t]),
        speakers=speakers.long(),
        labels=torch.full((1, t), -100, dtype=torch.long),
        dialogue_ids=["d"],
        index=torch.zeros(1, dtype=torch.long),
    )
    was_training = recipe.training
    recipe.eval()
    try:
        with torch.no_grad(), graph_window(recipe.model, wp, wf):
            return recipe(batch, keep=["a"]).log_probs
    finally:
        recipe.train(was_training)


def load_exported(path, fmt: str | None = None):
    """A callable (x [1, T, D] numpy/tensor, speakers [1, T]) -> log_probs numpy [T, C]."""
    path = os.fspath(path)
    fmt = fmt or ("onnx" if path.lower().endswith(".onnx") else "torchscript")
    if fmt == "onnx":
        import numpy as np
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, torch.get_num_threads())
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        def run_onnx(x, speakers):
            feeds = {
                "x": np.asarray(x, dtype=np.float32),
                "speakers": np.asarray(speakers, dtype=np.int64),
            }
            return sess.run(None, feeds)[0]

        return run_onnx
    module = torch.jit.load(path, map_location="cpu").eval()

    def run_ts(x, speakers):
        with torch.no_grad():
            return module(
                torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(speakers, dtype=torch.long)
            ).numpy()

    return run_ts


def max_difference(
    recipe, path, fmt=None, wp=None, wf=None, lengths=(1, 9, 50), seed: int = 0
) -> float:
    """Largest |log_prob| difference between an export and the PyTorch model, over random
    dialogues of the given lengths."""
    run = load_exported(path, fmt)
    dim = int(recipe.facts.feature_sizes["a"])
    worst = 0.0
    for i, t in enumerate(lengths):
        x, spk = example_inputs(dim, t, seed + i)
        ref = reference_log_probs(recipe, x, spk, wp, wf).numpy()
        got = run(x.numpy(), spk.numpy())
        diff = float(abs(got - ref).max())
        if not math.isfinite(diff):  # NaN would compare as no difference
            return math.inf
        worst = max(worst, diff)
    return worst


__all__ = [
    "DenseCOGMEN",
    "check_finite_weights",
    "dense_speech_model",
    "export_onnx",
    "export_torchscript",
    "load_exported",
    "max_difference",
    "reference_log_probs",
]
