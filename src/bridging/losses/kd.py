"""Distillation losses for the speech-only student (docs/method.md, section 3).

Every function takes flat tensors over the real utterances of a batch (the order of
:class:`bridging.models.cogmen.ModelOutput`), labels with ``IGNORE_INDEX`` (-100) where the
gold label is unknown.

- :func:`logit_kd_loss`: Hinton et al. (2015),
  ``alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(y, z_s)``.
  The KL term is averaged over all real utterances ("batchmean": the teacher's soft targets
  need no gold label); the CE is the NLL of ``log_softmax(z_s)`` over labelled utterances
  (weighted mean with class weights, as ``torch.nn.NLLLoss``). The ``T^2`` factor keeps the
  gradient of the KL term on the same scale for every temperature.
- :func:`embedding_kd_loss`: on the GNN outputs. ``"triplet"`` is the authors' n-way
  triplet: for utterance ``i`` with label ``y_i`` the positive is the teacher embedding of the
  same utterance, the negatives are, for every other class ``c`` present among the batch's
  labelled utterances, one teacher embedding of class ``c`` drawn at random (independently
  for every utterance); with ``K_i`` negatives and Euclidean ``d``::

      L_emb = sum_i ReLU(K_i * d(s_i, t_i) - sum_c d(s_i, t_c) + margin)

  ``reduction="sum"`` (default) is the reference behaviour (the authors' code sums over the
  utterances of the batch, so the term grows with the batch); ``"mean"`` divides by the
  number of triplets. Utterances without a gold label, or with no negative (a batch whose
  labelled utterances are all of one class, ``K_i = 0``), form no triplet and are left out.
  ``"mse"`` (mean squared error per feature) and ``"cosine"`` (mean of ``1 - cos``) use
  every real utterance and no labels.
- :class:`EmbeddingProjection`: an optional learned ``Linear`` from the student's embedding
  size to the teacher's, for students whose GNN output size differs from the teacher's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bridging.data.records import IGNORE_INDEX
from bridging.losses.nll import masked_nll

EMB_KINDS = ("triplet", "mse", "cosine")
REDUCTIONS = ("sum", "mean")


def _check_pair(student: Tensor, teacher: Tensor, what: str) -> None:
    if student.dim() != 2 or teacher.dim() != 2:
        raise ValueError(
            f"{what}: expected [N, D] tensors, got student {tuple(student.shape)} and teacher "
            f"{tuple(teacher.shape)}"
        )
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"{what}: student has {student.shape[0]} utterances, teacher {teacher.shape[0]}; "
            "both must see the same dialogues"
        )


def cross_entropy(logits: Tensor, labels: Tensor, class_weights=None) -> Tensor:
    """NLL of ``log_softmax(logits)`` over labelled utterances (``IGNORE_INDEX`` skipped):
    :func:`bridging.losses.nll.masked_nll` of the logits."""
    labels = labels.to(logits.device).long()
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape)}")
    return masked_nll(F.log_softmax(logits, dim=-1), labels, class_weights)


def kd_kl(student_logits: Tensor, teacher_logits: Tensor, T: float) -> Tensor:
    """``T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``, averaged over the utterances.

    The teacher's logits are treated as constants (detached)."""
    _check_pair(student_logits, teacher_logits, "logit distillation")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"logit distillation: student logits {tuple(student_logits.shape)} and teacher "
            f"logits {tuple(teacher_logits.shape)} differ (same label set needed)"
        )
    T = float(T)
    if not T > 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    n = student_logits.shape[0]
    if n == 0:
        return student_logits.sum() * 0.0
    log_p_s = F.log_softmax(student_logits / T, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach().to(student_logits.dtype) / T, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="sum", log_target=True) / n
    return (T * T) * kl


def logit_kd_terms(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, T: float, class_weights=None
) -> tuple[Tensor, Tensor]:
    """The two unweighted terms of :func:`logit_kd_loss`: ``(T^2 * KL, CE)``."""
    return (
        kd_kl(student_logits, teacher_logits, T),
        cross_entropy(student_logits, labels, class_weights),
    )


def logit_kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    T: float,
    alpha: float,
    class_weights=None,
) -> Tensor:
    """``alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(y, z_s)``."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    kl, ce = logit_kd_terms(student_logits, teacher_logits, labels, T, class_weights)
    return alpha * kl + (1.0 - alpha) * ce


# -- embedding distillation ---------------------------------------------------------------


def draw_negatives(labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """For every utterance and every class, the index of one random utterance of that class.

    Returns long ``[N, C]`` with ``C = max label + 1``: entry ``(i, c)`` is a random index
    ``j`` with ``labels[j] == c``, drawn independently per ``i``; ``-1`` where ``c`` is the
    utterance's own class, where the utterance has no label, or where no utterance of class
    ``c`` is in the batch. One draw per present class (a loop over classes, none over
    utterances); with the same ``generator`` state, the same negatives.
    """
    labels = labels.long()
    n = labels.shape[0]
    valid = labels != IGNORE_INDEX
    n_classes = int(labels[valid].max()) + 1 if bool(valid.any()) else 0
    out = torch.full((n, n_classes), -1, dtype=torch.long, device=labels.device)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    for c in range(n_classes):
        members = torch.nonzero(labels == c).flatten()
        if members.numel() == 0:
            continue
        pick = torch.randint(members.numel(), (n,), generator=generator, device=gen_device)
        chosen = members[pick.to(labels.device)]
        use = valid & (labels != c)
        out[:, c] = torch.where(use, chosen, torch.full_like(chosen, -1))
    return out


def triplet_kd_loss(
    student_emb: Tensor,
    teacher_emb: Tensor,
    labels: Tensor,
    margin: float = 1.0,
    negatives: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "sum",
) -> Tensor:
    """The authors' n-way triplet (see the module docstring); ``negatives`` as returned by
    :func:`draw_negatives` (drawn here with ``generator`` when not given)."""
    _check_pair(student_emb, teacher_emb, "triplet distillation")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: expected one of {REDUCTIONS}")
    labels = labels.to(student_emb.device).long()
    if labels.shape != student_emb.shape[:1]:
        raise ValueError(
            f"labels {tuple(labels.shape)} do not match embeddings {tuple(student_emb.shape)}"
        )
    teacher_emb = teacher_emb.detach().to(student_emb.dtype)
    if negatives is None:
        negatives = draw_negatives(labels, generator)
    negatives = negatives.to(student_emb.device)
    if negatives.shape[0] != labels.shape[0]:
        raise ValueError(f"negatives {tuple(negatives.shape)} do not match labels {labels.shape}")
    d_pos = torch.linalg.vector_norm(student_emb - teacher_emb, dim=-1)  # [N]
    has = negatives >= 0  # [N, C]
    k = has.sum(-1)  # K_i
    d_neg = student_emb.new_zeros(student_emb.shape[0])
    for c in range(negatives.shape[1]):  # loop over classes only
        idx = negatives[:, c].clamp_min(0)
        d = torch.linalg.vector_norm(student_emb - teacher_emb[idx], dim=-1)
        d_neg = d_neg + torch.where(has[:, c], d, torch.zeros_like(d))
    per = F.relu(k.to(d_pos.dtype) * d_pos - d_neg + float(margin))
    use = (k > 0) & (labels != IGNORE_INDEX)
    total = torch.where(use, per, torch.zeros_like(per)).sum()
    if reduction == "mean":
        total = total / use.sum().clamp_min(1)
    return total


def embedding_kd_loss(
    student_emb: Tensor,
    teacher_emb: Tensor,
    labels: Tensor | None = None,
    kind: str = "triplet",
    margin: float = 1.0,
    generator: torch.Generator | None = None,
    negatives: Tensor | None = None,
    reduction: str = "sum",
) -> Tensor:
    """Distillation on the GNN outputs: ``kind`` = ``triplet`` | ``mse`` | ``cosine``.

    The sizes must agree (use :class:`EmbeddingProjection` on the student's side otherwise).
    ``reduction`` applies to the triplet only (``mse`` and ``cosine`` are means)."""
    if kind not in EMB_KINDS:
        raise ValueError(f"unknown embedding distillation {kind!r}: expected one of {EMB_KINDS}")
    _check_pair(student_emb, teacher_emb, f"{kind} embedding distillation")
    if student_emb.shape[1] != teacher_emb.shape[1]:
        raise ValueError(
            f"embedding distillation: the student's embeddings have {student_emb.shape[1]} "
            f"features, the teacher's {teacher_emb.shape[1]}; give both the same GNN output "
            "size (model.gnn_nheads x model.hidden_size) or set recipe.kd.projection=true "
            "(a learned linear projection of the student's embeddings)"
        )
    if kind == "triplet":
        if labels is None:
            raise ValueError("the triplet embedding loss needs the labels")
        return triplet_kd_loss(
            student_emb, teacher_emb, labels, margin, negatives, generator, reduction
        )
    teacher_emb = teacher_emb.detach().to(student_emb.dtype)
    if student_emb.shape[0] == 0:
        return student_emb.sum() * 0.0
    if kind == "mse":
        return F.mse_loss(student_emb, teacher_emb)
    return (1.0 - F.cosine_similarity(student_emb, teacher_emb, dim=-1)).mean()


class EmbeddingProjection(nn.Module):
    """A learned ``Linear(student_size -> teacher_size)`` applied to the student's embeddings
    before the embedding loss (used in training only)."""

    def __init__(self, student_size: int, teacher_size: int) -> None:
        super().__init__()
        self.student_size = int(student_size)
        self.teacher_size = int(teacher_size)
        self.linear = nn.Linear(self.student_size, self.teacher_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


__all__ = [
    "EMB_KINDS",
    "EmbeddingProjection",
    "cross_entropy",
    "draw_negatives",
    "embedding_kd_loss",
    "kd_kl",
    "logit_kd_loss",
    "logit_kd_terms",
    "triplet_kd_loss",
]
