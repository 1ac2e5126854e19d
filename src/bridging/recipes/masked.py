"""The masked (modality-dropout) recipe.

A COGMEN (or its graph-free variant, ``model.gnn=none``) on one or more modalities (default
a+v, also a+t+v, or audio alone: the authors' audio feature dropout) trained with parts of
its input zeroed by a :class:`~bridging.recipes.masking.ModalityMask` drawn per training batch (by
default the authors' policy). Validation, checkpoint selection (``val/wf1``) and test use
the speech-only condition by default (``eval_modalities=[a]``: the other modalities zeroed,
nothing random); :func:`bridging.runs.evaluate.full_modality_metrics` adds the same best
model's full-modality dev and test metrics to the run's metrics.json, skipped when the
evaluation already uses every modality of the model (e.g. an audio-only model): there is no
other condition to report.
"""

from __future__ import annotations

import logging

from bridging.data.batch import DialogueBatch
from bridging.recipes.base import EmotionRecipe
from bridging.recipes.masking import ModalityMask

log = logging.getLogger(__name__)

#: The checkpoint key holding the mask generator's state (resumed runs continue its stream).
MASK_STATE_KEY = "bridging_mask_state"


class MaskedRecipe(EmotionRecipe):
    """EmotionRecipe whose training batches go through a :class:`ModalityMask`.

    Args (besides EmotionRecipe's, given by keyword: ``**recipe``):
        mask: the ModalityMask options (``p_none``, ``p_audio_full``, ``p_other_full``,
            ``p_random``, ``random``, ``p``, ``span``, ``granularity``, ``rescale``).
        seed: the run seed; the mask draws from its own generator seeded from it.
        eval_modalities: as EmotionRecipe, but ``None`` means speech only (``[a]``) here.
        full_eval: add the full-modality dev/test metrics of the best model to metrics.json
            (skipped, with ``full_eval_skipped`` saying why, when ``eval_modalities`` already holds
            every modality of the model).
    """

    kind = "masked"

    def __init__(
        self,
        mask: dict | None = None,
        seed: int | None = None,
        full_eval: bool = True,
        **recipe,
    ):
        if recipe.get("eval_modalities") is None and "a" in recipe.get("modalities", ()):
            recipe["eval_modalities"] = ["a"]
        super().__init__(**recipe)
        self.masker = ModalityMask(**dict(mask or {}), seed=seed)
        self.full_eval = bool(full_eval)
        others = [m for m in self.modalities if m != self.masker.audio]
        if self.masker.probs["p_other_full"] > 0 and not others:
            log.warning(
                "mask.p_other_full=%g but the model has no non-audio modality (%s): those "
                "batches are left unmasked",
                self.masker.probs["p_other_full"],
                "+".join(self.modalities),
            )

    # -- training --------------------------------------------------------------------------
    def training_losses(self, batch: DialogueBatch):
        return super().training_losses(self.masker(batch))

    # -- checkpoints: the mask stream resumes where it stopped ----------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[MASK_STATE_KEY] = self.masker.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)  # the global random states
        state = checkpoint.get(MASK_STATE_KEY)
        if state is not None:
            self.masker.load_state_dict(state)
