"""Multinomial logistic regression, full-batch L-BFGS (the reference rows of the
comparison, ``bridging.runs.baselines``, and the actor-identification probe of the synthetic
corpus's calibration, ``bridging.data.synthetic.calibration``)."""

from __future__ import annotations

import torch


def fit_logreg(x, y, n_classes: int, l2: float, init=None, max_iter: int = 400):
    """Weights [F, K] and bias [K] minimising mean cross-entropy + l2/2 * |W|^2 (full-batch
    L-BFGS until the largest gradient entry is below 1e-4)."""
    w = torch.zeros(x.shape[1], n_classes, dtype=x.dtype) if init is None else init[0].clone()
    b = torch.zeros(n_classes, dtype=x.dtype) if init is None else init[1].clone()
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-4,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


__all__ = ["fit_logreg"]
