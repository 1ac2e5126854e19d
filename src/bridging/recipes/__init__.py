"""Training recipes (LightningModules) and loading of any bridging checkpoint."""

from __future__ import annotations

import os

import torch

from bridging.data.records import DataError


def recipe_classes() -> dict:
    from bridging.recipes.teacher import TeacherRecipe

    classes = {"teacher": TeacherRecipe}
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
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint we can read"
        raise DataError(
            f"{path}: not a bridging checkpoint (torch.load with weights_only failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). A checkpoint "
            "saved by the reference COGMEN code must first go through bridging-import-cogmen."
        ) from exc
    if not isinstance(ckpt, dict) or "bridging" not in ckpt or "state_dict" not in ckpt:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DataError(
            f"{path}: not a bridging checkpoint (expected keys 'bridging', 'state_dict' and "
            f"'hyper_parameters'; found {keys})"
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
    recipe = classes[kind](**ckpt["hyper_parameters"])
    recipe.load_state_dict(ckpt["state_dict"])
    recipe.checkpoint_path = os.fspath(path)
    return recipe.to(map_location).eval()
