"""Import of checkpoints saved by the reference COGMEN code (docs/method.md 2, checkpoints).

The reference saves ``torch.save({"args": argparse.Namespace, "state_dict": <the whole
pickled COGMEN nn.Module>})``. Loading such a file normally needs the reference package
(``cogmen``) and runs arbitrary pickled code. Here it is unpickled through an allow-list:

- the reference classes (``cogmen.model.COGMEN.COGMEN``, ``...SeqContext.SeqContext``,
  ``...GNN.GNN``, ``...Classifier.Classifier``, ``...Classifier.MaskedEmotionAtt``,
  ``...Classifier.Highway``) become local inert stand-ins (``nn.Module`` subclasses with no
  behaviour) that only keep the pickled attributes;
- every ``torch_geometric`` object (convolutions, aggregations, inspectors of any PyG
  version), the ``inspect`` / ``typing`` annotation objects they hold (``Optional[X]``,
  ``X | None``) also become inert stand-ins, so PyG's version at save time does not matter;
- ``torch.nn.modules.*`` module classes, tensor/storage rebuild functions, dtypes,
  ``collections.OrderedDict``, ``argparse.Namespace``, builtin containers and numpy
  scalars/arrays are allowed as they are;
- anything else is refused with :class:`UnsafeCheckpointError` naming the class.

Nothing from the file is ever called except those allowed globals. The parameters are then
collected by walking the modules' ``_parameters`` / ``_buffers`` / ``_modules``, the unused
reference modules are dropped and the names mapped to :class:`bridging.models.cogmen.COGMEN`
(whose submodules carry the reference names), with ``pad_mode="reference"``.
"""

from __future__ import annotations

import argparse
import builtins
import collections
import functools
import importlib
import math
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bridging.data.records import LABEL_SETS, DataError, ordered_modalities
from bridging.utils.files import check_input_file

# ---------------------------------------------------------------------------------------
# Inert stand-ins


class InertModule(nn.Module):
    """Stand-in for a pickled object of a class we do not run: keeps its state, does nothing.

    Accepts any constructor arguments and any pickled state; supports the few protocol hooks
    pickle may use to fill an object (``__setstate__``, item assignment, append/extend).
    """

    reference_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        obj = object.__new__(cls)
        object.__setattr__(obj, "_inert_args", args)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never runs nn.Module.__init__
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            state, slots = state
            if slots:
                self.__dict__.setdefault("_inert_slots", {}).update(slots)
        if isinstance(state, dict):
            self.__dict__.update(state)
        elif state is not None:
            self.__dict__["_inert_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_inert_items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("_inert_list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("_inert_list", []).extend(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"inert stand-in for {self.reference_name} has no {name!r}")

    def __repr__(self) -> str:
        return f"<inert {self.reference_name}>"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.reference_name} is an inert stand-in and cannot run")


#: The reference model's classes, unpickled as inert stand-ins (``ReferenceCOGMEN``, ...).
REFERENCE_CLASSES: dict[str, type[InertModule]] = {
    name: type(f"Reference{name.rsplit('.', 1)[1]}", (InertModule,), {"reference_name": name})
    for name in (
        "cogmen.model.COGMEN.COGMEN",
        "cogmen.model.SeqContext.SeqContext",
        "cogmen.model.GNN.GNN",
        "cogmen.model.Classifier.Classifier",
        "cogmen.model.Classifier.MaskedEmotionAtt",
        "cogmen.model.Classifier.Highway",
    )
}
ReferenceCOGMEN = REFERENCE_CLASSES["cogmen.model.COGMEN.COGMEN"]

_INERT_CACHE: dict[str, type[InertModule]] = {}


def _inert_class(full_name: str) -> type[InertModule]:
    cls = _INERT_CACHE.get(full_name)
    if cls is None:
        cls = type(f"Inert[{full_name}]", (InertModule,), {"reference_name": full_name})
        _INERT_CACHE[full_name] = cls
    return cls


# ---------------------------------------------------------------------------------------
# Allow-list


class UnsafeCheckpointError(DataError):
    """A checkpoint refers to a global that the allow-list refuses."""


def _safe_type(*args: Any) -> type:
    if len(args) != 1:
        raise pickle.UnpicklingError("builtins.type is only allowed with one argument")
    return type(args[0])


def _safe_getitem(obj: Any, key: Any) -> Any:
    """Subscript of annotation objects (typing.Union[...]) only: gives an inert object."""
    inert = isinstance(obj, InertModule) or (isinstance(obj, type) and issubclass(obj, InertModule))
    if not inert:
        raise pickle.UnpicklingError(
            f"operator.getitem is only allowed on annotation stand-ins, not {type(obj).__name__}"
        )
    return _inert_class("typing.<subscript>")()


def _is_annotation(obj: Any) -> bool:
    return (
        obj is None
        or isinstance(obj, InertModule | type | types.UnionType)
        or (isinstance(obj, type) and issubclass(obj, InertModule))
    )


def _safe_or(a: Any, b: Any) -> Any:
    """``X | Y`` of annotation types only (how ``Tensor | None`` pickles): an inert object."""
    if not (_is_annotation(a) and _is_annotation(b)):
        raise pickle.UnpicklingError("operator.or_ is only allowed on annotation types")
    return _inert_class("types.<union>")()


_BUILTINS = {
    "set",
    "frozenset",
    "list",
    "dict",
    "tuple",
    "int",
    "float",
    "complex",
    "bool",
    "str",
    "bytes",
    "bytearray",
    "slice",
    "range",
}
_TORCH_REBUILD = {
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
}
_TORCH_FUNCTIONS = {
    ("torch.nn.functional", "relu"),
    ("torch.nn.functional", "gelu"),
    ("torch.nn.functional", "leaky_relu"),
    ("torch.nn.functional", "elu"),
    ("torch.nn.functional", "silu"),
    ("torch.nn.functional", "tanh"),
    ("torch.nn.functional", "sigmoid"),
    ("torch._C._nn", "gelu"),
    ("torch", "relu"),
    ("torch", "tanh"),
    ("torch", "sigmoid"),
}
_NUMPY = {
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
}
_NUMPY_DTYPE_MODULES = ("numpy.dtypes",)
# Objects held by PyG modules (inspectors, signatures, type annotations): made inert.
_INERT_MODULES = ("torch_geometric", "inspect", "typing")


def _resolve(module: str, name: str) -> Any:
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _allowed_global(module: str, name: str) -> Any:
    """The object to use for global ``module.name``, or None when refused."""
    full = f"{module}.{name}"
    if full in REFERENCE_CLASSES:
        return REFERENCE_CLASSES[full]
    root = module.split(".")[0]
    if root in _INERT_MODULES:
        return _inert_class(full)
    if module == "builtins":
        if name in _BUILTINS:
            return getattr(builtins, name)
        if name == "type":
            return _safe_type
        if name == "NoneType":
            return type(None)
        return None
    if (module, name) in {("_operator", "getitem"), ("operator", "getitem")}:
        return _safe_getitem
    if (module, name) in {("_operator", "or_"), ("operator", "or_")}:
        return _safe_or
    if (module, name) == ("functools", "reduce"):  # reduce(or_, (X, Y)) for X | Y
        return functools.reduce
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict
    if (module, name) == ("argparse", "Namespace"):
        return argparse.Namespace
    if (module, name) == ("_codecs", "encode"):
        import codecs

        return codecs.encode
    if module == "torch._utils" and name in _TORCH_REBUILD:
        return getattr(torch._utils, name, None)
    if (module, name) == ("torch._tensor", "_rebuild_from_type_v2"):
        return torch._tensor._rebuild_from_type_v2
    if (module, name) in {
        ("torch.nn.parameter", "Parameter"),
        ("torch", "Tensor"),
        ("torch", "Size"),
        ("torch", "device"),
    }:
        return _resolve(module, name)
    if (module, name) == ("torch.serialization", "_get_layout"):
        return torch.serialization._get_layout
    if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):
        return vars(torch)[name]
    if module in ("torch", "torch.storage", "torch.cuda") and name.endswith("Storage"):
        loaded = sys.modules.get(module)
        obj = vars(loaded).get(name) if loaded is not None else None
        return obj if isinstance(obj, type) else None
    if (module, name) in _TORCH_FUNCTIONS:
        try:
            return _resolve(module, name)
        except (ImportError, AttributeError):
            return None
    if module.startswith("torch.nn.modules."):
        # only modules torch has already loaded are looked at (the file triggers no import);
        # a name this torch lacks (e.g. from an older torch) becomes an inert stand-in
        loaded = sys.modules.get(module)
        obj = vars(loaded).get(name) if loaded is not None else None
        if obj is None:
            return _inert_class(full)
        return obj if isinstance(obj, type) and issubclass(obj, nn.Module) else None
    if (module, name) in _NUMPY or module in _NUMPY_DTYPE_MODULES:
        try:
            obj = _resolve(module, name)
        except (ImportError, AttributeError):
            return None
        if module in _NUMPY_DTYPE_MODULES:
            import numpy as np

            return obj if isinstance(obj, type) and issubclass(obj, np.dtype) else None
        return obj
    return None


def _allow_list_pickle_module(path: str) -> types.SimpleNamespace:
    """A pickle module for ``torch.load`` whose Unpickler only admits allow-listed globals."""
    import _compat_pickle

    class AllowListUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            obj = _allowed_global(module, name)
            if obj is None:
                raise UnsafeCheckpointError(
                    f"{path}: refused to unpickle '{module}.{name}': it is not on the "
                    "allow-list of a reference COGMEN checkpoint"
                )
            return obj

    def load(file: Any, **kwargs: Any) -> Any:
        return AllowListUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(
        __name__="bridging_allow_list_pickle", Unpickler=AllowListUnpickler, load=load
    )


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` through the allow-list, tensors mapped to CPU."""
    path = str(path)
    check_input_file(path, "checkpoint file")
    if not Path(path).is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        return torch.load(
            path,
            map_location="cpu",
            pickle_module=_allow_list_pickle_module(path),
            weights_only=False,
        )
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure means: not a readable torch file
        raise DataError(
            f"{path}: not a PyTorch checkpoint that can be read ({type(e).__name__}: {e})"
        ) from e


# ---------------------------------------------------------------------------------------
# Parameters of the pickled modules


def _module_tensors(module: Any, prefix: str, out: dict[str, Tensor], seen: set[int]) -> None:
    """Collect parameters and persistent buffers like ``nn.Module.state_dict`` does."""
    if id(module) in seen:
        return
    seen.add(id(module))
    d = getattr(module, "__dict__", {})
    non_persistent = d.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for name, t in (d.get(kind) or {}).items():
            if t is None or (kind == "_buffers" and name in non_persistent):
                continue
            if not isinstance(t, Tensor):
                raise DataError(f"{prefix}{name} is a {type(t).__name__}, not a tensor")
            out[prefix + name] = t.detach()
    for name, child in (d.get("_modules") or {}).items():
        if child is not None:
            _module_tensors(child, f"{prefix}{name}.", out, seen)


#: Reference modules that the forward pass never uses (docs/method.md 2, reference checkpoints).
DROPPED_PREFIXES = (
    "rnn.encoding_layer.",
    "rnn.LayerNorm.",
    "clf.emotion_att.",
    "clf.lin_7.",
    "clf.linear.",
    "clf.nll_loss.",
    "clf.bce_loss.",
)


def _jsonable(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth < 8 and isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy/torch scalar
        return value.item()
    return repr(value)


def _n_speakers_from_relations(n_rel: int, where: str) -> int:
    n = int(round(math.sqrt(n_rel / 2)))
    if 2 * n * n != n_rel:
        raise DataError(f"{where}: gcn.conv1 has {n_rel} relations, not 2 * n_speakers^2")
    return n


def _count_layers(keys: list[str], prefix: str) -> int:
    idx = {int(k[len(prefix) :].split(".")[0]) for k in keys if k.startswith(prefix)}
    return len(idx)


def _read_args(ckpt: Any, where: str) -> dict[str, Any]:
    """The reference's ``args`` (argparse Namespace or dict) of a checkpoint dict, checked."""
    if not isinstance(ckpt, dict) or "args" not in ckpt or "state_dict" not in ckpt:
        found = sorted(map(str, ckpt.keys())) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DataError(
            f"{where}: not a reference COGMEN checkpoint: expected a dict with keys 'args' "
            f"and 'state_dict', found {found}"
        )
    args = ckpt["args"]
    if isinstance(args, argparse.Namespace):
        a = dict(vars(args))
    elif isinstance(args, dict):
        a = dict(args)
    else:
        raise DataError(f"{where}: 'args' is a {type(args).__name__}, not an argparse.Namespace")
    if a.get("emotion") in ("7class", "multilabel"):
        # the reference scores those with clf.lin_7 / sigmoids, not lin2 + log_softmax
        raise DataError(
            f"{where}: args.emotion={a['emotion']!r} (a MOSEI variant) is not supported; "
            "only single-label checkpoints scored by clf.lin2 can be imported"
        )
    return a


def _reference_tensors(model: Any, where: str) -> dict[str, Tensor]:
    """Every parameter and buffer of the pickled reference module (or a dict of tensors)."""
    raw: dict[str, Tensor] = {}
    if isinstance(model, ReferenceCOGMEN):
        _module_tensors(model, "", raw, set())
    elif isinstance(model, dict) and model and all(isinstance(v, Tensor) for v in model.values()):
        raw = {str(k): v.detach() for k, v in model.items()}
    else:
        raise DataError(
            f"{where}: 'state_dict' holds a {type(model).__name__}; expected the pickled "
            "reference COGMEN module (cogmen.model.COGMEN.COGMEN) or a dict of tensors"
        )
    return raw


def _needer(state: dict[str, Tensor], where: str):
    def need(key: str) -> Tensor:
        if key not in state:
            raise DataError(f"{where}: unknown checkpoint layout: no parameter {key!r}")
        return state[key]

    return need


def _sequence_context(state: dict[str, Tensor], a: dict, where: str) -> dict[str, Any]:
    """``rnn``, ``input_size``, ``seqcontext_nlayer`` and the output size ``g`` of the
    checkpoint's sequence context (transformer, LSTM or GRU), from its weights."""
    keys, need = list(state), _needer(state, where)
    if any(k.startswith("rnn.transformer_encoder.") for k in keys):
        rnn = "transformer"
        input_size = int(need("rnn.transformer_encoder.layers.0.linear1.weight").shape[1])
        nlayer = _count_layers(keys, "rnn.transformer_encoder.layers.")
        g = int(need("rnn.transformer_out.weight").shape[0])
    elif any(k.startswith("rnn.rnn.") for k in keys):
        w_ih = need("rnn.rnn.weight_ih_l0")
        per_dir = int(need("rnn.rnn.weight_hh_l0").shape[1])
        gates = int(w_ih.shape[0]) // per_dir
        kinds = {4: "lstm", 3: "gru"}
        if gates not in kinds:
            raise DataError(f"{where}: unknown recurrent layer with {gates} gate blocks")
        rnn = kinds[gates]
        input_size = int(w_ih.shape[1])
        nlayer = len(
            [k for k in keys if k.startswith("rnn.rnn.weight_ih_l") and "reverse" not in k]
        )
        g = 2 * per_dir
    else:
        raise DataError(f"{where}: unknown checkpoint layout: no sequence context under 'rnn.'")
    if a.get("rnn") not in (None, rnn):
        raise DataError(f"{where}: args.rnn={a.get('rnn')!r} but the weights are a {rnn}")
    return {"rnn": rnn, "input_size": input_size, "seqcontext_nlayer": nlayer, "g": g}


def _graph_and_classifier(state: dict[str, Tensor], a: dict, seq: dict, where: str) -> dict:
    """``hidden_size``, ``n_speakers``, ``gnn_nheads``, ``n_classes``, ``concat_gin_gout``
    and ``use_highway`` of the checkpoint's GNN and classifier, from its weights."""
    need, g, rnn = _needer(state, where), seq["g"], seq["rnn"]
    conv1 = need("gcn.conv1.weight")
    if conv1.dim() != 3 or int(conv1.shape[1]) != g:
        raise DataError(
            f"{where}: unknown checkpoint layout: gcn.conv1.weight {tuple(conv1.shape)} "
            f"(expected [relations, {g}, hidden])"
        )
    hidden = int(conv1.shape[2])
    n_speakers = _n_speakers_from_relations(int(conv1.shape[0]), where)
    if "n_speakers" in a and a["n_speakers"] is not None and int(a["n_speakers"]) != n_speakers:
        raise DataError(
            f"{where}: args.n_speakers={a['n_speakers']} but gcn.conv1 has "
            f"{conv1.shape[0]} relations"
        )
    if rnn == "transformer" and g != hidden:
        raise DataError(f"{where}: transformer_out gives {g} features but the GNN uses {hidden}")
    if rnn != "transformer" and g != 2 * hidden:
        raise DataError(
            f"{where}: the {rnn} gives {g} features; this importer needs 2 x {hidden} "
            "(hidden units per direction = GNN hidden size)"
        )
    heads = int(need("gcn.conv2.lin_key.weight").shape[0]) // hidden
    clf_in = int(need("clf.lin1.weight").shape[1])
    concat = clf_in == hidden * heads + g
    if not concat and clf_in != hidden * heads:
        raise DataError(f"{where}: clf.lin1 takes {clf_in} inputs; GNN gives {hidden * heads}")
    return {
        "hidden_size": hidden,
        "n_speakers": n_speakers,
        "gnn_nheads": heads,
        "n_classes": int(need("clf.lin2.weight").shape[0]),
        "concat_gin_gout": concat,
        "use_highway": any(k.startswith("clf.highway.") for k in state),
    }


def _check_input_size(a: dict, input_size: int, where: str) -> None:
    """The args' ``dataset_embedding_dims`` (when given) must match the weights."""
    dims = a.get("dataset_embedding_dims")
    dataset, modalities = a.get("dataset"), a.get("modalities")
    if isinstance(dims, dict) and dataset in dims and isinstance(dims[dataset], dict):
        expected = dims[dataset].get(modalities)
        if expected is not None and int(expected) != input_size:
            raise DataError(
                f"{where}: args say {modalities!r} inputs have {expected} features but the "
                f"weights take {input_size}"
            )


def _reference_meta(a: dict, where: str, dropped: list[str], n_classes: int) -> dict[str, Any]:
    """What the import records beside the weights (see :func:`load_reference_checkpoint`)."""
    dataset, modalities = a.get("dataset"), a.get("modalities")
    meta: dict[str, Any] = {
        "args": _jsonable(a),
        "source_path": where,
        "dataset": dataset,
        "dropped_keys": dropped,
        "defaults_used": [k for k in ("wp", "wf", "drop_rate") if a.get(k) is None],
    }
    if isinstance(modalities, str):
        try:
            meta["modalities"] = ordered_modalities(list(modalities))
        except DataError:
            meta["modalities"] = None
    label_set = {"iemocap": "iemocap_6", "iemocap_4": "iemocap_4"}.get(dataset)
    if label_set is not None and len(LABEL_SETS[label_set]) == n_classes:
        meta["label_set"] = label_set
        meta["label_names"] = list(LABEL_SETS[label_set])
    return meta


def load_reference_checkpoint(
    path: str | Path,
) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Any]]:
    """Read a reference COGMEN checkpoint.

    Returns ``(kwargs, state_dict, meta)``: ``COGMEN(**kwargs).load_state_dict(state_dict)``
    rebuilds the reference model (``pad_mode="reference"``); ``meta`` holds ``args`` (the
    reference argparse Namespace as a JSON-able dict), ``modalities`` (list, order a, t, v),
    ``dataset``, ``label_set`` / ``label_names`` (when known), ``dropped_keys`` and
    ``source_path``. Raises :class:`DataError` (or :class:`UnsafeCheckpointError`) with the
    file path for anything else.
    """
    from bridging.models.cogmen import COGMEN  # local: avoid an import cycle at module load

    where = str(path)
    ckpt = safe_torch_load(path)
    a = _read_args(ckpt, where)
    raw = _reference_tensors(ckpt["state_dict"], where)
    dropped = sorted(k for k in raw if k.startswith(DROPPED_PREFIXES))
    state = {k: v.clone() for k, v in raw.items() if not k.startswith(DROPPED_PREFIXES)}
    seq = _sequence_context(state, a, where)
    parts = _graph_and_classifier(state, a, seq, where)
    _check_input_size(a, seq["input_size"], where)
    class_weights = None
    if a.get("class_weight") and "clf.nll_loss.weight" in raw:
        class_weights = [float(v) for v in raw["clf.nll_loss.weight"].flatten()]
    kwargs: dict[str, Any] = {
        "input_size": seq["input_size"],
        "n_classes": parts["n_classes"],
        "n_speakers": parts["n_speakers"],
        "rnn": seq["rnn"],
        "hidden_size": parts["hidden_size"],
        "seqcontext_nlayer": seq["seqcontext_nlayer"],
        "gnn_nheads": parts["gnn_nheads"],
        "drop_rate": float(a["drop_rate"]) if a.get("drop_rate") is not None else 0.5,
        "wp": int(a["wp"]) if a.get("wp") is not None else 5,
        "wf": int(a["wf"]) if a.get("wf") is not None else 5,
        "gnn": "rgcn_transformer",
        "concat_gin_gout": parts["concat_gin_gout"],
        "use_highway": parts["use_highway"],
        "class_weights": class_weights,
        "pad_mode": "reference",
    }
    try:
        COGMEN(**kwargs).load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as e:
        raise DataError(f"{where}: unknown checkpoint layout: {e}") from e
    return kwargs, state, _reference_meta(a, where, dropped, parts["n_classes"])


def load_reference_model(path: str | Path) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """``(model, kwargs, meta)``: the imported COGMEN in eval mode, weights loaded."""
    from bridging.models.cogmen import COGMEN

    kwargs, state, meta = load_reference_checkpoint(path)
    model = COGMEN(**kwargs)
    model.load_state_dict(state)
    return model.eval(), kwargs, meta


__all__ = [
    "load_reference_checkpoint",
    "load_reference_model",
    "safe_torch_load",
    "UnsafeCheckpointError",
    "InertModule",
    "REFERENCE_CLASSES",
    "DROPPED_PREFIXES",
]
