"""Modality masking (masked training): zero parts of a batch's input by a random policy.

Plain PyTorch, no Lightning. A :class:`ModalityMask` takes a batch of named modalities
(a :class:`~bridging.data.batch.DialogueBatch`, or a dict ``name -> [B, T, D_m]`` tensor) and
zeroes parts of it. One *scenario* is drawn per unit (see granularity):

``audio_full``
    the audio modality (``a``) fully masked, the others kept;
``other_full``
    every non-audio modality fully masked: the speech-only test condition;
``random``
    random partial masking of every modality at once: within each modality ``m``, every
    feature dimension starts a masked span with probability ``p_m`` (a per-dimension rate,
    not a scenario probability); a span covers ``span_m`` consecutive dimensions, clipped at
    the modality's end (so dimension ``j`` is masked iff a span starts in
    ``[j - span_m + 1, j]``);
``none``
    nothing masked: **our extension**, probability 0 by default.

The authors' policy (their masked-training code, in words): one uniform ``u`` per training
batch; ``u < p_audio_full``: audio fully zeroed; ``p_audio_full <= u < p_audio_full +
p_other_full``: every non-audio modality fully zeroed; otherwise random partial masking of
all modalities at once, audio at rate ``p_a`` and video at rate ``p_v`` per dimension, spans
of ``span_a`` / ``span_v`` dimensions; the same mask for every utterance of the batch, no
rescaling. Their settings (p_audio_full, p_other_full, p_a, p_v): (0.1, 0.1, 0.2, 0.2), also
(0.3, 0.3, 0.2, 0.2), and an audio-only input with p_a 0.2 (plain 20% audio feature dropout).
They have no "nothing masked" branch. The paper's figure speaks of 4 input masking scenarios;
the fourth, nothing masked (``p_none``), is our extension, probability 0 by default. The
constructor defaults are the authors' committed policy: ``p_none`` 0, ``p_audio_full`` 0.1,
``p_other_full`` 0.1, ``p_random`` 0.8, rate 0.2 and span 1 for every modality, batch
granularity, no rescaling. Scenario edges are laid out as ``[none | audio_full | other_full
| random]`` over ``[0, 1)``, so with ``p_none = 0`` the draw is exactly the authors' branch
logic on the same uniform.

The scenario probabilities ``p_none, p_audio_full, p_other_full, p_random`` must sum to 1.
One of ``p_none`` and ``p_random`` may be ``"auto"`` (or ``None``): ``1 - the other three``
(``p_random: auto`` gives the authors' "otherwise" branch while sweeps vary the full-modality
probabilities).

Granularity, the unit that gets its own draw (scenario and random dimensions):

``batch``
    one draw for the whole batch: the same feature dimensions are zeroed in every utterance
    of every dialogue of the batch (the authors' way, the default);
``dialogue``
    one draw per dialogue, shared by its utterances;
``utterance``
    one draw per utterance.

Masking zeroes entries (``masked_fill``) and, with rescaling, multiplies the kept ones, so
zero padding stays zero. With ``rescale=True`` the kept dimensions of a partially masked
modality are multiplied by ``D_m / kept_m`` (inverted-dropout style, ``1 / (1 - fraction
masked)``); a fully masked modality stays all zero. Off by default, as in the authors' code.

Randomness: every draw comes from the mask's own CPU ``torch.Generator`` (never the global
RNG), seeded with ``seed + SEED_OFFSET``: a run's masks depend only on the run seed and on
the sequence of batch shapes, not on model initialisation or dropout (with ``batch``
granularity not even on the batch shapes: the same mask sequence with and without the
graph network). Per batch it draws one uniform per unit (the scenario), then, per
modality, one uniform per feature dimension of each unit in the ``random`` scenario: a
deterministic function of the generator state and the batch shapes, so reruns reproduce
exactly.
``state_dict()`` / ``load_state_dict()`` carry the generator state (the masked recipe saves
it in its checkpoints, so a resumed run continues the same mask stream).

Evaluation masking (:func:`keep_only`, the speech-only condition ``keep=[a]``) is
deterministic: the modalities not kept are zeroed, nothing is drawn.

Cost: everything is vectorised (one loop over modalities); with ``batch`` granularity a
batch needs at most ``1 + sum_m D_m`` random numbers and one ``masked_fill`` per modality
(none when nothing is masked).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from torch import Tensor

SCENARIOS: tuple[str, ...] = ("none", "audio_full", "other_full", "random")
GRANULARITIES: tuple[str, ...] = ("batch", "dialogue", "utterance")
#: Added to the run seed to seed the mask generator (a stream apart from the global RNG).
SEED_OFFSET = 1_000_003
AUDIO = "a"


def span_mask(starts: Tensor, span: int) -> Tensor:
    """Bool ``[..., D]``: dimension ``j`` masked iff a span starts in ``[j - span + 1, j]``.

    ``starts``: bool ``[..., D]``, True where a span of ``span`` dimensions starts; spans are
    clipped at the end (dimension ``D - 1``). Vectorised: a windowed sum over a cumulative sum.
    """
    span = int(span)
    if span < 1:
        raise ValueError(f"span length must be >= 1, got {span}")
    if span == 1:
        return starts.clone()
    csum = torch.cumsum(starts.to(torch.int32), dim=-1)
    d = starts.shape[-1]
    if span >= d:  # every dimension at or after the first start
        return csum > 0
    window = csum.clone()
    window[..., span:] -= csum[..., :-span]
    return window > 0


def keep_only(features: Mapping[str, Tensor], keep) -> dict[str, Tensor]:
    """Evaluation masking: the modalities not in ``keep`` zeroed (deterministic)."""
    keep = set(keep)
    return {m: (x if m in keep else torch.zeros_like(x)) for m, x in features.items()}


def _probability(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"mask probability {name}={value!r} is not a number") from None
    if not (0.0 <= v <= 1.0) or math.isnan(v):
        raise ValueError(f"mask probability {name}={value!r} must lie in [0, 1]")
    return v


def _span(name: str, value) -> int:
    try:
        v = int(value)
        ok = v >= 1 and float(value) == v
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"mask span {name}={value!r} must be an integer >= 1")
    return v


def _is_auto(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() == "auto")


def _scenario_probabilities(**given) -> dict[str, float]:
    """The four scenario probabilities, checked; at most one of p_none/p_random ``auto``."""
    auto = [k for k in ("p_none", "p_random") if _is_auto(given[k])]
    if _is_auto(given["p_audio_full"]) or _is_auto(given["p_other_full"]):
        bad = "p_audio_full" if _is_auto(given["p_audio_full"]) else "p_other_full"
        raise ValueError(
            f"mask probability {bad}={given[bad]!r} must be a number in [0, 1] "
            "(only p_none or p_random may be auto)"
        )
    if len(auto) > 1:
        raise ValueError(
            f"mask probabilities: only one of p_none, p_random may be auto; got "
            f"p_none={given['p_none']!r}, p_random={given['p_random']!r}"
        )
    probs = {k: None if k in auto else _probability(k, v) for k, v in given.items()}
    if auto:
        (key,) = auto
        rest = 1.0 - sum(v for v in probs.values() if v is not None)
        if rest < -1e-9:
            listed = ", ".join(f"{k}={v:g}" for k, v in probs.items() if v is not None)
            raise ValueError(f"mask probabilities: {key}=auto would be {rest:.6g} < 0 ({listed})")
        probs[key] = max(0.0, rest)
    total = sum(probs.values())
    if abs(total - 1.0) > 1e-6:
        listed = ", ".join(f"{k}={v:g}" for k, v in probs.items())
        raise ValueError(f"mask scenario probabilities must sum to 1; got {listed} (sum {total:g})")
    return {k: probs[k] for k in ("p_none", "p_audio_full", "p_other_full", "p_random")}


@dataclass
class MaskDraw:
    """One draw of the policy, for a batch of a given shape.

    Units have shape ``unit_shape``: ``(1, 1)`` (batch), ``(B, 1)`` (dialogue), ``(B, T)``
    (utterance); every tensor below broadcasts against ``[B, T, D_m]``.
    """

    #: long ``unit_shape``: index into :data:`SCENARIOS`.
    scenario: Tensor
    #: modality -> bool ``unit_shape + (D_m,)``: where random spans start (drawn only for the
    #: units whose scenario is ``random``; False elsewhere).
    starts: dict[str, Tensor]
    #: modality -> bool ``unit_shape + (D_m,)``: True where the feature is zeroed.
    masked: dict[str, Tensor]
    #: modality -> float ``unit_shape + (D_m,)``: the multiplier of kept features (rescaling
    #: on only; ``None`` otherwise).
    factor: dict[str, Tensor | None]
    #: modalities left entirely as they are (nothing masked anywhere): ``apply`` returns them
    #: without a copy.
    untouched: frozenset = frozenset()

    @property
    def keep(self) -> dict[str, Tensor]:
        """modality -> bool: True where the feature is kept."""
        return {m: ~v for m, v in self.masked.items()}

    def fraction_masked(self) -> dict[str, float]:
        return {m: float(v.float().mean()) for m, v in self.masked.items()}


class ModalityMask:
    """The masking policy (see the module docstring); the defaults are the authors' policy.

    Args:
        p_none, p_audio_full, p_other_full, p_random: scenario probabilities (sum 1); one of
            ``p_none`` and ``p_random`` may be ``"auto"`` (or ``None``): ``1 - the others``.
            ``p_none`` (nothing masked) is our extension, 0 by default.
        random: modality -> ``{"p": start probability, "span": span length}`` for the random
            scenario; a modality not listed uses ``p`` and ``span``.
        p, span: defaults for modalities not in ``random``.
        granularity: ``batch``, ``dialogue`` or ``utterance``.
        rescale: multiply kept features of a partially masked modality by ``D / kept``.
        seed: the run seed (the generator is seeded with ``seed + SEED_OFFSET``); ``None``:
            ``torch.initial_seed()`` (the seed given to ``seed_everything``).
        audio: the name of the speech modality.
    """

    def __init__(
        self,
        p_none=0.0,
        p_audio_full=0.1,
        p_other_full=0.1,
        p_random=0.8,
        random: Mapping | None = None,
        p: float = 0.2,
        span: int = 1,
        granularity: str = "batch",
        rescale: bool = False,
        seed: int | None = None,
        audio: str = AUDIO,
    ):
        probs = _scenario_probabilities(
            p_none=p_none, p_audio_full=p_audio_full, p_other_full=p_other_full, p_random=p_random
        )
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"unknown mask granularity {granularity!r}; expected one of {GRANULARITIES}"
            )
        self.probs = probs
        self.default_p = _probability("p", p)
        self.default_span = _span("span", span)
        self.random: dict[str, dict] = {}
        for m, opts in dict(random or {}).items():
            opts = dict(opts or {})
            unknown = set(opts) - {"p", "span"}
            if unknown:
                raise ValueError(
                    f"mask.random.{m}: unknown keys {sorted(unknown)} (expected p, span)"
                )
            pm = _probability(f"random.{m}.p", opts.get("p", self.default_p))
            lm = _span(f"random.{m}.span", opts.get("span", self.default_span))
            self.random[m] = {"p": pm, "span": lm}
        self.granularity = granularity
        self.rescale = bool(rescale)
        self.audio = audio
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed((self.seed + SEED_OFFSET) % (2**63))
        cum = torch.tensor([probs[f"p_{s}"] for s in SCENARIOS], dtype=torch.float64).cumsum(0)
        self._cum = cum[:-1].to(torch.float32)  # bucket edges for the scenario draw

    # -- description / state ---------------------------------------------------------------
    def random_options(self, modality: str) -> dict:
        return self.random.get(modality, {"p": self.default_p, "span": self.default_span})

    def describe(self) -> dict:
        """The resolved policy, JSON-ready (for metrics.json)."""
        return {
            **self.probs,
            "random": {m: dict(v) for m, v in self.random.items()},
            "p": self.default_p,
            "span": self.default_span,
            "granularity": self.granularity,
            "rescale": self.rescale,
            "seed": self.seed,
            "rng": f"own torch.Generator seeded with seed + {SEED_OFFSET}",
        }

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping) -> None:
        self.generator.set_state(state["generator"])

    # -- drawing ---------------------------------------------------------------------------
    def unit_shape(self, batch_size: int, max_len: int) -> tuple[int, int]:
        if self.granularity == "batch":
            return (1, 1)
        if self.granularity == "dialogue":
            return (batch_size, 1)
        return (batch_size, max_len)

    def draw(self, sizes: Mapping[str, int], batch_size: int, max_len: int) -> MaskDraw:
        """Draw scenarios and random spans for a batch ``[batch_size, max_len]`` whose
        modalities have the given feature sizes (on CPU, from the mask's generator).

        Per call: one uniform per unit (the scenario), then per modality one uniform per
        feature dimension of each unit whose scenario is ``random`` (a deterministic function
        of the generator state and the batch shape, so reruns and resumes reproduce it)."""
        shape = self.unit_shape(batch_size, max_len)
        g = self.generator
        u = torch.rand(shape, generator=g)
        scenario = torch.searchsorted(self._cum, u.contiguous(), right=True).clamp_max(3)
        is_random = scenario == SCENARIOS.index("random")
        n_random = int(is_random.sum())
        audio_full = scenario == SCENARIOS.index("audio_full")
        other_full = scenario == SCENARIOS.index("other_full")
        starts, masked, factor, untouched = {}, {}, {}, set()
        for m, d in sizes.items():
            d = int(d)
            opts = self.random_options(m)
            full = audio_full if m == self.audio else other_full
            msk = full[..., None].expand(*shape, d).clone()
            st = torch.zeros((*shape, d), dtype=torch.bool)
            if n_random:
                s_r = torch.rand((n_random, d), generator=g) < opts["p"]
                st[is_random] = s_r
                msk[is_random] = span_mask(s_r, opts["span"])
            starts[m], masked[m] = st, msk
            nothing = not bool(msk.any())
            if nothing:
                untouched.add(m)
            f = None
            if self.rescale and not nothing:
                kept = (d - msk.sum(-1, keepdim=True)).to(torch.float32)
                f = torch.where(kept > 0, d / kept.clamp_min(1.0), torch.ones_like(kept))
            factor[m] = f
        return MaskDraw(
            scenario=scenario,
            starts=starts,
            masked=masked,
            factor=factor,
            untouched=frozenset(untouched),
        )

    # -- applying --------------------------------------------------------------------------
    @staticmethod
    def apply(features: Mapping[str, Tensor], draw: MaskDraw) -> dict[str, Tensor]:
        """The features with the draw's masked entries zeroed and, with rescaling, the kept
        ones multiplied (modalities not in the draw, or untouched by it, are returned as they
        are, not copied). Zeros stay zeros, so padding stays zero."""
        out = {}
        for m, x in features.items():
            if m not in draw.masked or m in draw.untouched:
                out[m] = x
                continue
            y = x.masked_fill(draw.masked[m].to(x.device), 0.0)
            f = draw.factor.get(m)
            if f is not None:
                y = y * f.to(device=x.device, dtype=x.dtype)
            out[m] = y
        return out

    def __call__(self, batch, lengths: Tensor | None = None):
        """Mask a DialogueBatch (returns a new one) or a dict of ``[B, T, D]`` tensors (returns
        a new dict; ``lengths`` is accepted for symmetry: padding is zero in and out)."""
        features = batch.features if hasattr(batch, "features") else batch
        if not features:
            return batch
        first = next(iter(features.values()))
        if first.dim() != 3:
            raise ValueError(f"expected features [B, T, D], got {tuple(first.shape)}")
        b, t = int(first.shape[0]), int(first.shape[1])
        draw = self.draw({m: int(x.shape[-1]) for m, x in features.items()}, b, t)
        masked = self.apply(features, draw)
        if hasattr(batch, "features"):
            return replace(batch, features=masked)
        return masked


__all__ = ["ModalityMask", "MaskDraw", "SCENARIOS", "GRANULARITIES", "keep_only", "span_mask"]
