"""Import of reference COGMEN checkpoints (docs/method.md, section 2 (reference checkpoints)).

A test-only stand-in of the reference package (``cogmen`` with the same module paths, class
names and parameter names, unused modules included) is written to a temporary directory,
a model is pickled in the reference layout, the stand-in is removed from ``sys.modules`` /
``sys.path``, and the checkpoint is imported. The imported COGMEN must give the
log-probabilities of an independent forward written here from the stand-in's weights (no
padding mask in the transformer, as the reference), to 1e-5.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import math
import os
import pickle
import pickletools
import sys
import textwrap
import types
import zipfile
from typing import Optional

import pytest
import torch
import torch.nn.functional as F

from bridging.cogmen_import.read import (
    UnsafeCheckpointError,
    load_reference_checkpoint,
    load_reference_model,
)
from bridging.data.records import DataError
from bridging.models.cogmen import COGMEN

# the stand-in builds its encoder like the reference (nested-tensor notice for odd heads)
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor")


# --------------------------------------------------------------------------------------
# The stand-in reference package (classes hold the modules under the reference names).

FAKE_FILES = {
    "cogmen/__init__.py": "",
    "cogmen/model/__init__.py": "",
    "cogmen/model/SeqContext.py": """
        import torch
        import torch.nn as nn

        class SeqContext(nn.Module):
            def __init__(self, u_dim, g_dim, args):
                super().__init__()
                self.args = args
                self.dropout = nn.Dropout(args.drop_rate)
                self.input_size = args.dataset_embedding_dims[args.dataset][args.modalities]
                self.nhead = 1
                for h in range(7, 15):
                    if self.input_size % h == 0:
                        self.nhead = h
                        break
                self.encoding_layer = nn.Embedding(110, self.input_size)
                self.LayerNorm = nn.LayerNorm(self.input_size)
                if args.rnn == "transformer":
                    layer = nn.TransformerEncoderLayer(
                        d_model=self.input_size, nhead=self.nhead,
                        dropout=args.drop_rate, batch_first=True)
                    self.transformer_encoder = nn.TransformerEncoder(
                        layer, num_layers=args.seqcontext_nlayer)
                    self.transformer_out = nn.Linear(self.input_size, g_dim, bias=True)
                else:
                    cls = nn.LSTM if args.rnn == "lstm" else nn.GRU
                    self.rnn = cls(self.input_size, g_dim // 2, dropout=args.drop_rate,
                                   bidirectional=True, num_layers=args.seqcontext_nlayer,
                                   batch_first=True)
    """,
    "cogmen/model/GNN.py": """
        import torch.nn as nn
        from torch_geometric.nn import RGCNConv, TransformerConv

        class GNN(nn.Module):
            def __init__(self, g_dim, h1_dim, h2_dim, args):
                super().__init__()
                self.num_relations = 2 * args.n_speakers ** 2
                self.conv1 = RGCNConv(g_dim, h1_dim, self.num_relations)
                self.conv2 = TransformerConv(h1_dim, h2_dim, heads=args.gnn_nheads, concat=True)
                self.bn = nn.BatchNorm1d(h2_dim * args.gnn_nheads)
    """,
    "cogmen/model/Classifier.py": """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class MaskedEmotionAtt(nn.Module):
            def __init__(self, input_dim):
                super().__init__()
                self.lin = nn.Linear(input_dim, input_dim)

        class Highway(nn.Module):
            def __init__(self, size, num_layers, f):
                super().__init__()
                self.num_layers = num_layers
                self.nonlinear = nn.ModuleList([nn.Linear(size, size) for _ in range(num_layers)])
                self.linear = nn.ModuleList([nn.Linear(size, size) for _ in range(num_layers)])
                self.gate = nn.ModuleList([nn.Linear(size, size) for _ in range(num_layers)])
                self.f = f

        class Classifier(nn.Module):
            def __init__(self, input_dim, hidden_size, tag_size, args):
                super().__init__()
                self.emotion_att = MaskedEmotionAtt(input_dim)
                self.args = args
                if args.use_highway:
                    self.highway = Highway(size=input_dim, num_layers=1, f=F.relu)
                else:
                    self.highway = nn.Identity()
                self.lin1 = nn.Linear(input_dim, hidden_size)
                self.drop = nn.Dropout(args.drop_rate)
                self.lin2 = nn.Linear(hidden_size, tag_size)
                self.lin_7 = nn.Linear(hidden_size, 7)
                self.linear = nn.Linear(input_dim, tag_size)
                if args.class_weight:
                    self.loss_weights = torch.tensor(
                        [1 / 0.1426, 1 / 0.2386, 1 / 0.3760, 1 / 0.2428]
                    )
                    self.nll_loss = nn.NLLLoss(self.loss_weights)
                else:
                    self.nll_loss = nn.NLLLoss()
                    self.bce_loss = nn.BCEWithLogitsLoss(reduction="sum")
    """,
    "cogmen/model/COGMEN.py": """
        import torch.nn as nn
        from .SeqContext import SeqContext
        from .GNN import GNN
        from .Classifier import Classifier

        class COGMEN(nn.Module):
            def __init__(self, args):
                super().__init__()
                g_dim = args.hidden_size if args.rnn == "transformer" else 200
                h = args.hidden_size
                tag_size = {"iemocap": 6, "iemocap_4": 4}[args.dataset]
                self.concat_gin_gout = args.concat_gin_gout
                self.wp, self.wf, self.device = args.wp, args.wf, args.device
                self.rnn = SeqContext(100, g_dim, args)
                self.gcn = GNN(g_dim, h, h, args)
                clf_in = h * args.gnn_nheads + (g_dim if args.concat_gin_gout else 0)
                self.clf = Classifier(clf_in, h, tag_size, args)
                self.edge_type_to_idx = {}
                for j in range(args.n_speakers):
                    for k in range(args.n_speakers):
                        self.edge_type_to_idx[str(j) + str(k) + "0"] = len(self.edge_type_to_idx)
                        self.edge_type_to_idx[str(j) + str(k) + "1"] = len(self.edge_type_to_idx)
    """,
}


def make_args(**over):
    args = argparse.Namespace(
        dataset="iemocap_4",
        modalities="av",
        rnn="transformer",
        hidden_size=100,
        drop_rate=0.1,
        wp=2,
        wf=3,
        seqcontext_nlayer=2,
        gnn_nheads=2,
        concat_gin_gout=False,
        use_highway=False,
        class_weight=False,
        n_speakers=2,
        device="cpu",
        emotion=None,
        seed=24,
        dataset_embedding_dims={"iemocap_4": {"a": 10, "v": 18, "av": 28}},
    )
    for k, v in over.items():
        setattr(args, k, v)
    return args


@pytest.fixture
def fake_cogmen(tmp_path):
    """Install the stand-in package; yields its COGMEN class; removes every trace after use."""
    root = tmp_path / "fake_pkg"
    for rel, src in FAKE_FILES.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(src))
    sys.path.insert(0, str(root))

    def remove():
        for name in [m for m in sys.modules if m == "cogmen" or m.startswith("cogmen.")]:
            del sys.modules[name]
        if str(root) in sys.path:
            sys.path.remove(str(root))

    try:
        from cogmen.model.COGMEN import COGMEN as RefCOGMEN

        yield RefCOGMEN, remove
    finally:
        remove()


def randomize(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
        bn = model.gcn.bn
        bn.running_mean.copy_(0.3 * torch.randn(bn.running_mean.shape, generator=gen))
        bn.running_var.copy_(0.5 + torch.rand(bn.running_var.shape, generator=gen))
        bn.num_batches_tracked.fill_(123)


def save_reference(tmp_path, fake_cogmen, mutate=None, **over):
    RefCOGMEN, remove = fake_cogmen
    args = make_args(**over)
    torch.manual_seed(0)
    ref = RefCOGMEN(args)
    randomize(ref)
    ref.eval()
    path = tmp_path / "iemocap_4_best_dev_f1_model_av.pt"
    if mutate is None:
        torch.save({"args": args, "state_dict": ref}, path)
    else:
        with mutate(ref):
            torch.save({"args": args, "state_dict": ref}, path)
    sd = {k: v.detach().double().clone() for k, v in ref.state_dict().items()}
    seq_module = ref.rnn.rnn if args.rnn != "transformer" else None
    remove()
    assert "cogmen" not in sys.modules
    with pytest.raises(ImportError):
        import cogmen  # noqa: F401
    return path, args, sd, ref.edge_type_to_idx, seq_module


# --------------------------------------------------------------------------------------
# Independent forward, from the stand-in's weights (float64).


def lin(sd, name, x):
    return x @ sd[name + ".weight"].T + sd[name + ".bias"]


def transformer_ref(sd, x, n_layers, n_heads):
    """Post-norm encoder layers over the whole padded batch: no key padding mask."""
    b, t, d = x.shape
    dh = d // n_heads
    for i in range(n_layers):
        p = f"rnn.transformer_encoder.layers.{i}."
        qkv = x @ sd[p + "self_attn.in_proj_weight"].T + sd[p + "self_attn.in_proj_bias"]
        q, k, v = (z.reshape(b, t, n_heads, dh).transpose(1, 2) for z in qkv.split(d, -1))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, t, d)
        o = lin(sd, p + "self_attn.out_proj", o)
        x = F.layer_norm(x + o, (d,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], 1e-5)
        f = lin(sd, p + "linear2", torch.relu(lin(sd, p + "linear1", x)))
        x = F.layer_norm(x + f, (d,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-5)
    return lin(sd, "rnn.transformer_out", x)


def slow_edges(lengths, speakers, wp, wf, edge_type_to_idx):
    """Edges one at a time, as the reference's edge_perms / batch_graphify."""
    edges = []
    offset = 0
    for b, n in enumerate(lengths):
        for i in range(n):
            lo = 0 if wp == -1 else max(0, i - wp)
            hi = n if wf == -1 else min(n, i + wf + 1)
            for j in range(lo, hi):
                c = "0" if i < j else "1"
                key = str(speakers[b][i]) + str(speakers[b][j]) + c
                edges.append((offset + i, offset + j, edge_type_to_idx[key]))
        offset += n
    return edges


def rgcn_ref(sd, x, edges, n_rel):
    n = x.shape[0]
    out = x @ sd["gcn.conv1.root"] + sd["gcn.conv1.bias"]
    for r in range(n_rel):
        agg = torch.zeros(n, x.shape[1], dtype=x.dtype)
        cnt = torch.zeros(n, dtype=x.dtype)
        for s, t, rel in edges:
            if rel == r:
                agg[t] += x[s]
                cnt[t] += 1
        agg = agg / cnt.clamp(min=1)[:, None]
        out = out + agg @ sd["gcn.conv1.weight"][r]
    return out


def transformer_conv_ref(sd, x, edges, heads, c):
    n = x.shape[0]
    q = lin(sd, "gcn.conv2.lin_query", x).view(n, heads, c)
    k = lin(sd, "gcn.conv2.lin_key", x).view(n, heads, c)
    v = lin(sd, "gcn.conv2.lin_value", x).view(n, heads, c)
    out = torch.zeros(n, heads, c, dtype=x.dtype)
    for t in range(n):
        sources = [s for s, tt, _ in edges if tt == t]
        scores = (q[t][None] * k[sources]).sum(-1) / math.sqrt(c)  # [S, H]
        alpha = torch.softmax(scores, dim=0)
        out[t] = (alpha[..., None] * v[sources]).sum(0)
    return out.reshape(n, heads * c) + lin(sd, "gcn.conv2.lin_skip", x)


def reference_forward(sd, args, x, lengths, speakers, edge_type_to_idx, seq_module=None):
    d = x.shape[-1]
    n_heads = next(h for h in list(range(7, 15)) + [1] if d % h == 0 or h == 1)
    if args.rnn == "transformer":
        h = transformer_ref(sd, x, args.seqcontext_nlayer, n_heads)
    else:
        rnn = seq_module.double().eval()
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False
        )
        with torch.no_grad():
            h, _ = torch.nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True)
    feats = torch.cat([h[b, :n] for b, n in enumerate(lengths.tolist())])
    edges = slow_edges(lengths.tolist(), speakers.tolist(), args.wp, args.wf, edge_type_to_idx)
    g = rgcn_ref(sd, feats, edges, 2 * args.n_speakers**2)
    g = transformer_conv_ref(sd, g, edges, args.gnn_nheads, args.hidden_size)
    bn = "gcn.bn."
    g = (g - sd[bn + "running_mean"]) / torch.sqrt(sd[bn + "running_var"] + 1e-5)
    g = F.leaky_relu(g * sd[bn + "weight"] + sd[bn + "bias"], 0.01)
    h = torch.cat([feats, g], -1) if args.concat_gin_gout else g
    if args.use_highway:
        gate = torch.sigmoid(lin(sd, "clf.highway.gate.0", h))
        h = gate * torch.relu(lin(sd, "clf.highway.nonlinear.0", h)) + (1 - gate) * lin(
            sd, "clf.highway.linear.0", h
        )
    scores = lin(sd, "clf.lin2", torch.relu(lin(sd, "clf.lin1", h)))
    return F.log_softmax(scores, dim=-1)


def make_inputs(d, lengths=(7, 12, 4), seed=5):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    t = int(lengths.max())
    mask = torch.arange(t)[None, :] < lengths[:, None]
    x = torch.randn(len(lengths), t, d, generator=gen) * mask[..., None]
    speakers = torch.randint(0, 2, (len(lengths), t), generator=gen) * mask
    return x, lengths, speakers


# --------------------------------------------------------------------------------------


VARIANTS = [
    {},
    {"concat_gin_gout": True, "use_highway": True, "class_weight": True, "gnn_nheads": 1},
    {"rnn": "lstm", "wp": -1, "wf": 0, "seqcontext_nlayer": 2},
    {"wp": -1, "wf": -1, "seqcontext_nlayer": 1, "dataset": "iemocap", "drop_rate": 0.5},
]


@pytest.mark.parametrize("over", VARIANTS, ids=["default", "concat-highway-cw", "lstm", "full"])
def test_import_matches_independent_forward(tmp_path, fake_cogmen, over):
    if over.get("dataset") == "iemocap":
        over = {**over, "dataset_embedding_dims": {"iemocap": {"av": 28}}}
    path, args, sd, et_idx, seq_module = save_reference(tmp_path, fake_cogmen, **over)
    kwargs, state, meta = load_reference_checkpoint(path)

    assert kwargs["pad_mode"] == "reference"
    assert kwargs["input_size"] == 28 and kwargs["rnn"] == args.rnn
    assert kwargs["wp"] == args.wp and kwargs["wf"] == args.wf
    assert kwargs["gnn_nheads"] == args.gnn_nheads
    assert kwargs["seqcontext_nlayer"] == args.seqcontext_nlayer
    assert kwargs["concat_gin_gout"] == args.concat_gin_gout
    assert kwargs["use_highway"] == args.use_highway
    assert kwargs["drop_rate"] == args.drop_rate
    n_classes = 6 if args.dataset == "iemocap" else 4
    assert kwargs["n_classes"] == n_classes
    if args.class_weight:
        assert kwargs["class_weights"] == pytest.approx(
            [1 / 0.1426, 1 / 0.2386, 1 / 0.3760, 1 / 0.2428]
        )
    else:
        assert kwargs["class_weights"] is None
    assert not any(k.startswith(("rnn.encoding_layer", "rnn.LayerNorm")) for k in state)
    assert not any(k.startswith(("clf.emotion_att", "clf.lin_7", "clf.linear.")) for k in state)
    assert "rnn.encoding_layer.weight" in meta["dropped_keys"]
    assert "clf.lin_7.weight" in meta["dropped_keys"]
    assert meta["args"]["modalities"] == "av" and meta["modalities"] == ["a", "v"]
    assert meta["label_set"] == ("iemocap_6" if n_classes == 6 else "iemocap_4")
    assert len(meta["label_names"]) == n_classes

    model = COGMEN(**kwargs)
    model.load_state_dict(state)
    model.eval()
    x, lengths, speakers = make_inputs(28)
    with torch.no_grad():
        got = model(x, lengths, speakers).log_probs
    want = reference_forward(sd, args, x.double(), lengths, speakers, et_idx, seq_module)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)
    if args.rnn == "transformer" and len(set(lengths.tolist())) > 1:
        # the padding does matter in the reference: masking it changes the outputs
        masked = COGMEN(**{**kwargs, "pad_mode": "mask"})
        masked.load_state_dict(state)
        with torch.no_grad():
            other = masked.eval()(x, lengths, speakers).log_probs
        assert (other.double() - want).abs().max() > 1e-4


def pickled_globals(path):
    """Names of the globals a torch.save file refers to."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    names, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            names.add(f"{strings[-2]}.{strings[-1]}")
        elif op.name == "GLOBAL":
            names.add(arg.replace(" ", "."))
    return names


def _fake_global(module_name, cls_name, bases, namespace=None):
    """A class pickled as ``module_name.cls_name`` (a name the loading side may not have)."""
    cls = type(cls_name, bases, dict(namespace or {}))
    cls.__module__, cls.__qualname__ = module_name, cls_name
    return cls


@contextlib.contextmanager
def old_library_objects(ref):
    """Objects as older torch / PyG versions pickle them, absent from the installed ones.

    - MultiheadAttention.out_proj as ``torch.nn.modules.linear._LinearWithBias`` (torch < 1.8);
    - an inspector as ``torch_geometric.nn.conv.utils.inspector.Inspector`` (PyG 2.0) holding
      ``inspect.Parameter`` objects annotated with ``typing.Optional[torch.Tensor]``.
    """
    linear_mod = sys.modules["torch.nn.modules.linear"]
    old_linear = _fake_global("torch.nn.modules.linear", "_LinearWithBias", (torch.nn.Linear,))
    pyg_name = "torch_geometric.nn.conv.utils.inspector"
    pyg_mod = types.ModuleType(pyg_name)
    inspector_cls = _fake_global(pyg_name, "Inspector", (object,))
    pyg_mod.Inspector = inspector_cls
    linear_mod._LinearWithBias = old_linear
    sys.modules[pyg_name] = pyg_mod
    try:
        for layer in ref.rnn.transformer_encoder.layers:
            out_proj = layer.self_attn.out_proj
            out_proj.__class__ = old_linear
        inspector = inspector_cls()
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        optional = Optional[torch.Tensor]  # noqa: UP045 - pickles as typing.Union[...]
        inspector.params = {
            "message": {
                "x_j": inspect.Parameter("x_j", kind, annotation=optional),
                "edge_type": inspect.Parameter("edge_type", kind, annotation=torch.Tensor | None),
            }
        }
        ref.gcn.conv1.__dict__["inspector"] = inspector
        yield
    finally:
        del linear_mod._LinearWithBias
        del sys.modules[pyg_name]


def test_objects_of_older_torch_and_pyg_versions(tmp_path, fake_cogmen):
    path, args, sd, et_idx, _ = save_reference(tmp_path, fake_cogmen, mutate=old_library_objects)
    names = pickled_globals(path)
    for name in (
        "torch.nn.modules.linear._LinearWithBias",
        "torch_geometric.nn.conv.utils.inspector.Inspector",
        "inspect.Parameter",
        "inspect._ParameterKind",
        "_operator.getitem",
        "_operator.or_",
    ):
        assert name in names
    assert not hasattr(sys.modules["torch.nn.modules.linear"], "_LinearWithBias")
    kwargs, state, _ = load_reference_checkpoint(path)
    model = COGMEN(**kwargs)
    model.load_state_dict(state)
    x, lengths, speakers = make_inputs(28)
    with torch.no_grad():
        got = model.eval()(x, lengths, speakers).log_probs
    want = reference_forward(sd, args, x.double(), lengths, speakers, et_idx)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)


def test_plain_state_dict_checkpoint(tmp_path, fake_cogmen):
    RefCOGMEN, remove = fake_cogmen
    args = make_args()
    ref = RefCOGMEN(args)
    randomize(ref)
    path = tmp_path / "sd.pt"
    torch.save({"args": args, "state_dict": ref.state_dict()}, path)
    remove()
    model, kwargs, meta = load_reference_model(path)
    assert not model.training and kwargs["pad_mode"] == "reference"
    assert meta["source_path"] == str(path)
    got = model.state_dict()["gcn.conv1.root"]
    torch.testing.assert_close(got, ref.state_dict()["gcn.conv1.root"])


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_disallowed_class_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"args": make_args(), "state_dict": Evil(marker)}, path)
    with pytest.raises(UnsafeCheckpointError) as e:
        load_reference_checkpoint(path)
    assert f"{os.system.__module__}.system" in str(e.value)
    assert str(path) in str(e.value)
    assert isinstance(e.value, DataError)
    assert not marker.exists()

    # a plain (non-zip) pickle goes through the same allow-list
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps({"args": 1, "state_dict": Evil(marker)}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        load_reference_checkpoint(raw)
    assert not marker.exists()

    other = tmp_path / "counter.pt"
    torch.save({"args": make_args(), "state_dict": __import__("collections").Counter("ab")}, other)
    with pytest.raises(UnsafeCheckpointError, match="collections.Counter"):
        load_reference_checkpoint(other)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(DataError, match="not a PyTorch checkpoint"):
        load_reference_checkpoint(text)
    with pytest.raises(DataError, match="no such checkpoint"):
        load_reference_checkpoint(tmp_path / "missing.pt")

    wrong_keys = tmp_path / "wrong.pt"
    torch.save({"best_dev_f1": 0.8, "best_state": {"w": torch.zeros(2)}}, wrong_keys)
    with pytest.raises(DataError, match="'args' and 'state_dict'"):
        load_reference_checkpoint(wrong_keys)

    odd = tmp_path / "odd.pt"
    torch.save({"args": make_args(), "state_dict": torch.nn.Linear(3, 4)}, odd)
    with pytest.raises(DataError, match="state_dict"):
        load_reference_checkpoint(odd)

    mosei = tmp_path / "mosei.pt"
    torch.save({"args": make_args(emotion="7class"), "state_dict": {"w": torch.zeros(1)}}, mosei)
    with pytest.raises(DataError, match="7class"):
        load_reference_checkpoint(mosei)

    layout = tmp_path / "layout.pt"
    torch.save({"args": make_args(), "state_dict": {"rnn.foo.weight": torch.zeros(3)}}, layout)
    with pytest.raises(DataError, match="unknown checkpoint layout"):
        load_reference_checkpoint(layout)


def test_unexpected_extra_parameter_is_an_error(tmp_path, fake_cogmen):
    RefCOGMEN, remove = fake_cogmen
    ref = RefCOGMEN(make_args())
    sd = dict(ref.state_dict())
    sd["gcn.extra.weight"] = torch.zeros(2)
    path = tmp_path / "extra.pt"
    torch.save({"args": make_args(), "state_dict": sd}, path)
    remove()
    with pytest.raises(DataError, match="gcn.extra.weight"):
        load_reference_checkpoint(path)


def test_import_cli_gives_a_checkpoint_eval_and_predict_accept(tmp_path, fake_cogmen, capsys):
    from bridging.cli.import_cogmen import main as import_main
    from bridging.cogmen_import.read import load_reference_model
    from bridging.recipes import load_recipe
    from bridging.runs.evaluate import datamodule_for, evaluate, predict

    path, args, *_ = save_reference(tmp_path, fake_cogmen)
    out = tmp_path / "imported.ckpt"
    assert import_main([str(path), str(out)]) == 0
    recipe = load_recipe(out, expect="teacher")
    assert recipe.modalities == ["a", "v"] and recipe.facts.feature_sizes == {"a": 10, "v": 18}
    assert recipe.hparams["model"]["pad_mode"] == "reference"  # the compatibility switch
    data = {
        "synthetic": {
            "n_dialogues": 12,
            "n_test_dialogues": 3,
            "min_len": 3,
            "max_len": 9,
            "mean_len": 6,
            "feature_sizes": {"a": 10, "v": 18},
        },
        "label_set": "iemocap_4",
    }
    dm = datamodule_for(recipe, data, ["a", "v"])
    dm.setup()
    batch = dm.split("test").batch(torch.arange(3))
    ref_model, *_ = load_reference_model(path)
    with torch.no_grad():
        expected = ref_model(
            torch.cat([batch.features["a"], batch.features["v"]], -1), batch.lengths, batch.speakers
        ).log_probs
        got = recipe(batch).log_probs
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    metrics = evaluate(out, data_cfg=data, modalities=["a"])
    assert metrics["eval_modalities"] == ["a"] and 0 <= metrics["test"]["wf1"] <= 1
    rows = predict(out, tmp_path / "p.csv", data_cfg=data)
    assert len(rows) == dm.split("test").n_utterances
    # without a data config, evaluation says what to give
    with pytest.raises(ValueError, match="stores no data config"):
        evaluate(out)


def test_import_cli_refuses_a_non_checkpoint(tmp_path, capsys):
    from bridging.cli.import_cogmen import main as import_main

    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    assert import_main([str(bad), str(tmp_path / "o.ckpt")]) == 2
    assert "notes.pt" in capsys.readouterr().err
    assert not (tmp_path / "o.ckpt").exists()
