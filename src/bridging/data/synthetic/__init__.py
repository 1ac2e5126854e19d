"""The built-in default data: a seeded synthetic corpus calibrated to IEMOCAP's statistics.

``synthesize(preset=...)`` makes an IEMOCAP-shaped :class:`~bridging.data.records.Corpus`:
151 dialogues in 5 sessions (sessions 1-4 train, the last 31 dialogues session 5 = test),
two actors per session (10 in all, the test session's actors never seen in training), feature
sizes a 100, t 768, v 512. Presets:

``iemocap`` (the default)
    the calibrated corpus (:mod:`bridging.data.synthetic.iemocap`);
``independent``
    the negative control: the same corpus but with no shared affect (``redundancy=0``):
    given the latent category, the modalities are independent of each other and of the
    annotators' perception;
``legacy``
    the first generator (:mod:`bridging.data.synthetic.legacy`), kept to reproduce old figures;
``meld``
    a MELD-shaped corpus (:mod:`bridging.data.synthetic.meld`: 1,433 multi-party dialogues,
    up to 9 speakers, meld_7/meld_3 labels, a 300 + t 600 features); its own defaults apply
    to every argument left unset (None).

Modules: :mod:`~bridging.data.synthetic.iemocap` (the calibrated generator),
:mod:`~bridging.data.synthetic.meld`, :mod:`~bridging.data.synthetic.legacy`,
:mod:`~bridging.data.synthetic.common` (what they share) and
:mod:`~bridging.data.synthetic.calibration` (the facts it is fitted to, ``bridging-data
calibrate``).
"""

from __future__ import annotations

from bridging.data.records import LABEL_SETS, Corpus
from bridging.data.synthetic.common import IEMOCAP_6_COUNTS, IemocapShape
from bridging.data.synthetic.iemocap import (
    DEFAULT_FEATURE_SIZES,
    IEMOCAP_DEFAULTS,
    PRESETS,
    CorpusParams,
    generate,
    preset_params,
)

#: the preset of ``data=synthetic`` when none is given
DEFAULT_PRESET = "iemocap"


def synthesize(
    n_dialogues: int | None = None,
    min_len: int | None = None,
    max_len: int | None = None,
    mean_len: float | None = None,
    feature_sizes: dict[str, int] | None = None,
    label_set: str | None = None,
    seed: int = 0,
    n_test_dialogues: int | None = None,
    dev_fraction: float | None = None,
    total_utterances: int | None = None,
    sentences: bool = True,
    preset: str = "iemocap",
    **overrides,
) -> Corpus:
    """Generate a seeded synthetic corpus (see the module docstring).

    Arguments left None take the preset's defaults: for the IEMOCAP-shaped presets 151
    dialogues, lengths 8..110 with mean 49.2, iemocap_6, dev 10% of the training dialogues
    (:data:`IEMOCAP_DEFAULTS`); for ``meld`` those of
    :func:`synthesize_meld`.
    ``feature_sizes``: modality -> size (default a 100, t 768, v 512; any subset of a, t, v).
    ``n_test_dialogues``: default 31 of 151, scaled to ``n_dialogues`` (at least 1).
    ``total_utterances``: if given, the 6-way lengths add up to exactly this.
    ``preset``: ``iemocap`` (default), ``independent`` (no shared affect), ``legacy`` or
    ``meld``.
    ``overrides``: :class:`CorpusParams` fields for the calibrated presets (e.g.
    ``redundancy=0.5``); the legacy generator's own keywords for ``legacy``;
    :class:`~bridging.data.synthetic.meld.MeldParams` fields for ``meld``.
    """
    # the arguments shared by every preset (locals() holds just the parameters here)
    given = {k: v for k, v in locals().items() if k not in ("preset", "overrides")}
    if preset == "meld":
        from bridging.data.synthetic.meld import meld_corpus

        return meld_corpus(**given, **overrides)
    # the IEMOCAP-shaped presets: what is left None takes IemocapShape's default
    shape = {k: v for k, v in given.items() if v is not None}
    label_set = shape.get("label_set", IemocapShape.label_set)
    if label_set not in ("iemocap_4", "iemocap_6") and label_set in LABEL_SETS:
        raise ValueError(
            f"preset {preset} makes IEMOCAP labels (iemocap_4, iemocap_6); label_set "
            f"{label_set} needs preset meld"
        )
    if preset == "legacy":
        from bridging.data.synthetic.legacy import synthesize_legacy

        return synthesize_legacy(**shape, **overrides)
    params = preset_params(preset).with_overrides(**overrides)
    corpus, _ = generate(params=params, preset=preset, **shape)
    return corpus


def synthesize_meld(**kw) -> Corpus:
    """The MELD-shaped corpus (module docstring): ``synthesize(preset="meld", **kw)``, the
    same keywords and defaults. Defaults: 1,433 dialogues in MELD's splits, lengths 1..33
    from MELD's table, a 300 + t 600 features, meld_7 labels.

    ``min_len``/``max_len`` restrict the length table; ``total_utterances`` fixes the total
    (split in proportion to the dialogues); ``mean_len`` does not apply (lengths follow
    MELD's table). Other keywords: :class:`~bridging.data.synthetic.meld.MeldParams` fields."""
    return synthesize(preset="meld", **kw)


__all__ = [
    "DEFAULT_PRESET",
    "synthesize",
    "synthesize_meld",
    "generate",
    "CorpusParams",
    "preset_params",
    "PRESETS",
    "IEMOCAP_DEFAULTS",
    "DEFAULT_FEATURE_SIZES",
    "IEMOCAP_6_COUNTS",
    "IemocapShape",
]
