"""The one negative log-likelihood of bridging, with ignored labels and class weights
(docs/method.md 2: the loss averaged over the real, labelled utterances of a batch).

Used by the model (:meth:`bridging.models.cogmen.COGMEN.loss`, the teacher's and baselines'
loss, the students' classification term) and by :func:`bridging.losses.kd.cross_entropy`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bridging.data.records import IGNORE_INDEX


def masked_nll(log_probs: Tensor, labels: Tensor, class_weights=None) -> Tensor:
    r"""Mean NLL over the utterances whose label is not ``IGNORE_INDEX``.

    .. math::
        \mathcal{L} = \frac{\sum_{i:\,y_i \ne -100} w_{y_i}\,(-\log p_i[y_i])}
                           {\sum_{i:\,y_i \ne -100} w_{y_i}}

    with ``w = 1`` without class weights (torch's ``NLLLoss`` with ``ignore_index``, weighted
    mean). ``log_probs`` [N, C], ``labels`` [N]. No labelled utterance: 0, with a zero
    gradient (not NaN).
    """
    labels = labels.to(log_probs.device).long()
    if labels.shape != log_probs.shape[:1]:
        raise ValueError(
            f"labels {tuple(labels.shape)} do not match outputs {tuple(log_probs.shape)}"
        )
    valid = labels != IGNORE_INDEX
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    nll = -log_probs.gather(1, safe[:, None]).squeeze(1)
    weight = valid.to(log_probs.dtype)
    if class_weights is not None:
        cw = torch.as_tensor(class_weights, dtype=log_probs.dtype, device=log_probs.device)
        weight = weight * cw[safe]
    return (nll * weight).sum() / weight.sum().clamp_min(torch.finfo(log_probs.dtype).tiny)


__all__ = ["masked_nll"]
