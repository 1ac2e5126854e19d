"""The supervised recipes: COGMEN trained on its modalities with the NLL loss alone.

- :class:`TeacherRecipe` (kind ``teacher``): the multimodal teacher the students distil from
  (``experiment=teacher``, ``teacher_atv``, ``cogmen_reference``), also the "a+v trained,
  evaluated speech-only" baseline (``experiment=av_speech_only``, ``eval.modalities=[a]``);
- :class:`BaselineRecipe` (kind ``baseline``): the same training as the reference point of
  the comparison, e.g. the audio-only baseline (``experiment=audio_only``).

Both are the same computation; the kind says what the run is for, in metrics.json and
reports. A student accepts either as its teacher.
"""

from __future__ import annotations

from bridging.recipes.base import EmotionRecipe


class TeacherRecipe(EmotionRecipe):
    """COGMEN with the NLL loss: the multimodal teacher."""

    kind = "teacher"


class BaselineRecipe(TeacherRecipe):
    """COGMEN with the NLL loss: a baseline of the comparison (e.g. audio only)."""

    kind = "baseline"
