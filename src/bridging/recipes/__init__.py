"""Training recipes (LightningModules) and loading of any bridging checkpoint."""

from __future__ import annotations

import os
import re

import torch

from bridging.data.records import DataError
from bridging.utils.files import check_input_file

#: recipe constructor arguments that were renamed (old -> new): older checkpoints still load
RENAMED_HPARAMS = {"eval_keep": "eval_modalities"}


def recipe_classes() -> dict:
    from bridging.recipes.teacher import BaselineRecipe, TeacherRecipe

    classes = {"teacher": TeacherRecipe, "baseline": BaselineRecipe}
    try:
        from bridging.recipes.student import StudentRecipe

        classes["student_kd"] = StudentRecipe
    except ImportError:
        pass
    try:
        from bridging.recipes.masked import MaskedRecipe

        classes["masked"] = MaskedRecipe
    except ImportError:
        pass
    return classes


def read_checkpoint(path) -> dict:
    """Load a checkpoint dict with ``weights_only=True`` and check it is a bridging one."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such checkpoint file")
    check_input_file(path, "checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint we can read"
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            name = found.group(1)
            hint = (
                "a reference COGMEN checkpoint goes through bridging-import-cogmen first"
                if name.startswith("cogmen")
                else "a file that runs code when loaded, or one saved by another program"
            )
            raise DataError(
                f"{path}: not a bridging checkpoint: refused without running anything of "
                f"it: loading it would call {name}, which no bridging checkpoint needs "
                f"({hint})"
            ) from None
        raise DataError(
            f"{path}: not a bridging checkpoint (torch.load with weights_only failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). A checkpoint "
            "saved by the reference COGMEN code must first go through bridging-import-cogmen."
        ) from exc
    if not isinstance(ckpt, dict) or "bridging" not in ckpt or "state_dict" not in ckpt:
        keys = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DataError(
            f"{path}: not a bridging checkpoint (expected keys 'bridging', 'state_dict' and "
            f"'hyper_parameters'; found {keys})"
        )
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, dict):
        raise DataError(
            f"{path}: a bridging checkpoint without 'hyper_parameters' (found "
            f"{type(hp).__name__ if hp is not None else 'none'}): the model cannot be rebuilt"
        )
    facts = hp.get("facts")
    if not isinstance(facts, dict) or not isinstance(facts.get("feature_sizes"), dict):
        raise DataError(
            f"{path}: hyper_parameters has no 'facts' with 'feature_sizes': not a checkpoint "
            "of this bridging (the data facts size the model)"
        )
    return ckpt


def state_dict_mismatch(expected: dict, got: dict) -> str | None:
    """What differs between a model's state_dict (``expected``) and a checkpoint's
    (``got``): the first tensor whose shape differs, or missing/unexpected names; None if
    they fit."""
    for key, value in expected.items():
        if key in got and tuple(got[key].shape) != tuple(value.shape):
            return (
                f"tensor {key!r} has shape {list(got[key].shape)} in the checkpoint, "
                f"{list(value.shape)} in the model"
            )
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing:
        return f"{len(missing)} tensors of the model are missing (first: {missing[0]!r})"
    if unexpected:
        return f"{len(unexpected)} tensors are not in the model (first: {unexpected[0]!r})"
    return None


def check_data_fits(where, model_facts, data_facts, modalities) -> None:
    """Refuse data a model cannot read correctly: another label set (number or names of
    classes), more speakers, or a modality whose feature size differs from the one the model
    was trained with (the checkpoint's ``hyper_parameters["facts"]["feature_sizes"]``): the
    same total size with other per-modality sizes would feed one modality's columns to
    another's weights. ``modalities``: those the data provides."""
    from bridging.data.datamodule import DatasetFacts

    model = model_facts if isinstance(model_facts, DatasetFacts) else DatasetFacts(**model_facts)
    data = data_facts
    src = data.path or f"<{data.source_format}>"
    if list(model.label_names) != list(data.label_names):
        raise DataError(
            f"{where}: the model was trained on {model.label_set} ({model.n_classes} classes: "
            f"{', '.join(model.label_names)}) but the data {src} is {data.label_set} "
            f"({data.n_classes} classes: {', '.join(data.label_names)}): give "
            f"data.label_set={model.label_set}"
        )
    if data.n_speakers > model.n_speakers:
        raise DataError(
            f"{where}: the model knows {model.n_speakers} speakers, the data {src} has "
            f"{data.n_speakers}"
        )
    for m in modalities:
        want, have = model.feature_sizes.get(m), data.feature_sizes.get(m)
        if have is not None and want != have:
            raise DataError(
                f"{where}: modality {m!r} has {have} features per utterance in the data {src} "
                f"but the model was trained with {want} (checkpoint facts.feature_sizes "
                f"{dict(model.feature_sizes)}, data {dict(data.feature_sizes)})"
            )


def check_resume(path, recipe) -> dict:
    """Before resuming training from ``path``: it must be a bridging checkpoint with the
    full training state, of the recipe's kind, trained on data of the same sizes, with
    tensors of the shapes the configured model has. Errors name the file and the field.
    Returns the checkpoint."""
    ckpt = read_checkpoint(path)
    kind = ckpt["bridging"].get("kind")
    if kind != recipe.kind:
        raise DataError(
            f"{path}: a checkpoint of kind {kind!r}; this run trains {recipe.kind!r}: resume "
            "a run with its own configuration"
        )
    hp = ckpt["hyper_parameters"]
    mods = list(hp.get("modalities") or [])
    if mods != list(recipe.modalities):
        raise DataError(
            f"{path}: the checkpoint's model takes modalities {mods}, this run's "
            f"{list(recipe.modalities)} (modalities=...)"
        )
    check_data_fits(path, hp["facts"], recipe.facts, recipe.modalities)
    bad = state_dict_mismatch(recipe.state_dict(), ckpt["state_dict"])
    if bad:
        raise DataError(f"{path}: does not fit the model this run's config builds: {bad}")
    missing = [k for k in ("optimizer_states", "lr_schedulers") if k not in ckpt]
    if missing:
        raise DataError(
            f"{path}: a weights-only checkpoint (no {missing[0]}): it cannot resume training; "
            "resume from the run's full checkpoints/last.ckpt (ckpt_path=last)"
        )
    return ckpt


def load_recipe(path, map_location="cpu", expect=None):
    """Load any bridging checkpoint as its recipe (LightningModule), in eval mode.

    ``expect``: a kind or list of kinds accepted; anything else is an error naming both.
    """
    ckpt = read_checkpoint(path)
    kind = ckpt["bridging"].get("kind")
    classes = recipe_classes()
    if kind not in classes:
        raise DataError(f"{path}: checkpoint of unknown kind {kind!r}; known: {sorted(classes)}")
    if expect is not None:
        allowed = [expect] if isinstance(expect, str) else list(expect)
        if kind not in allowed:
            raise DataError(f"{path}: checkpoint of kind {kind!r}, expected one of {allowed}")
    hparams = dict(ckpt["hyper_parameters"])
    for old, new in RENAMED_HPARAMS.items():  # checkpoints written before a rename
        if old in hparams and new not in hparams:
            hparams[new] = hparams.pop(old)
    try:
        recipe = classes[kind](**hparams)
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(
            f"{path}: its hyper_parameters do not describe a {kind} model "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    bad = state_dict_mismatch(recipe.state_dict(), ckpt["state_dict"])
    if bad:
        raise DataError(f"{path}: state_dict does not fit its hyper_parameters: {bad}")
    recipe.load_state_dict(ckpt["state_dict"])
    recipe.checkpoint_path = os.fspath(path)
    recipe.binding = ckpt["bridging"].get("binding")  # the data it was trained on, if recorded
    return recipe.to(map_location).eval()
