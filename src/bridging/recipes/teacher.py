"""The teacher recipe: COGMEN trained on any modality subset with the NLL loss.

The audio-only baseline and the "av trained, evaluated speech-only" baseline are this
recipe too (``modalities: [a]``, or ``eval_keep: [a]`` at evaluation).
"""

from __future__ import annotations

from bridging.recipes.base import EmotionRecipe


class TeacherRecipe(EmotionRecipe):
    kind = "teacher"
