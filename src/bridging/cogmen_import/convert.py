"""Turn a checkpoint saved by the reference COGMEN code into a bridging teacher checkpoint."""

from __future__ import annotations

import io
from pathlib import Path

import pytorch_lightning as pl
import torch

from bridging import __version__
from bridging.cogmen_import.read import load_reference_checkpoint
from bridging.data.records import LABEL_SETS, MODALITY_ORDER, SPEAKER_NAMES, DataError
from bridging.recipes.teacher import TeacherRecipe
from bridging.utils.files import atomic_write_bytes

#: COGMEN's own per-modality sizes for IEMOCAP (its dataset_embedding_dims).
IEMOCAP_SIZES = {"a": 100, "t": 768, "v": 512}


def _feature_sizes(meta: dict, input_size: int, given: dict | None, where: str) -> dict:
    mods = meta.get("modalities")
    if not mods:
        raise DataError(f"{where}: args.modalities is missing or not a string of a, t, v")
    if given:
        sizes = {m: int(given[m]) for m in mods if m in given}
    else:
        dims = (meta["args"].get("dataset_embedding_dims") or {}).get(meta.get("dataset")) or {}
        sizes = {m: int(dims[m]) for m in mods if m in dims}
        if len(sizes) < len(mods) and meta.get("dataset", "").startswith("iemocap"):
            sizes = {m: IEMOCAP_SIZES[m] for m in mods}
    if len(sizes) != len(mods):
        raise DataError(
            f"{where}: cannot tell the size of each modality of {mods} (the args' "
            "dataset_embedding_dims lacks them); pass --feature-sizes, e.g. a=100,v=512"
        )
    if sum(sizes.values()) != input_size:
        raise DataError(
            f"{where}: per-modality sizes {sizes} add up to {sum(sizes.values())} but the "
            f"model takes {input_size} features"
        )
    return sizes


def import_reference(
    src, out, feature_sizes: dict | None = None, label_set: str | None = None
) -> dict:
    """Read the reference checkpoint ``src`` (allow-list unpickling), write a bridging teacher
    checkpoint to ``out`` (atomically). Returns a summary dict."""
    where = str(src)
    kwargs, state, meta = load_reference_checkpoint(src)
    label_set = label_set or meta.get("label_set")
    if label_set is None:
        sets = [s for s, names in LABEL_SETS.items() if len(names) == kwargs["n_classes"]]
        if len(sets) != 1:
            raise DataError(f"{where}: cannot tell the label set; pass --label-set")
        label_set = sets[0]
    names = list(LABEL_SETS[label_set])
    if len(names) != kwargs["n_classes"]:
        raise DataError(
            f"{where}: the model has {kwargs['n_classes']} classes, label set {label_set} has "
            f"{len(names)}"
        )
    sizes = _feature_sizes(meta, kwargs["input_size"], feature_sizes, where)
    modalities = [m for m in MODALITY_ORDER if m in sizes]
    facts = {
        "modalities": modalities,
        "feature_sizes": sizes,
        "label_set": label_set,
        "label_names": names,
        "n_speakers": kwargs["n_speakers"],
        "speaker_names": list(SPEAKER_NAMES[: kwargs["n_speakers"]]),
        "class_counts": [0] * len(names),
        "source_format": "reference-cogmen",
        "path": None,
        "extractors": {},
    }
    model_cfg = {
        k: v
        for k, v in kwargs.items()
        if k not in ("input_size", "n_classes", "n_speakers", "class_weights")
    }
    model_cfg["class_weight"] = kwargs["class_weights"] or False
    recipe = TeacherRecipe(facts=facts, modalities=modalities, model=model_cfg, data=None)
    recipe.model.load_state_dict(state, strict=True)
    ckpt = {
        "epoch": None,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": recipe.state_dict(),
        "hparams_name": "kwargs",
        "hyper_parameters": dict(recipe.hparams),
        "bridging": {
            "kind": "teacher",
            "version": __version__,
            "imported_from": where,
            "reference_args": meta["args"],
            "dropped_keys": meta["dropped_keys"],
        },
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(out, buf.getvalue())
    return {
        "out": str(Path(out)),
        "modalities": modalities,
        "label_set": label_set,
        "model": model_cfg,
        "dropped": meta["dropped_keys"],
    }
