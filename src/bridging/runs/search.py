"""Hyper-parameter search helpers: an Optuna sampler whose first trials are given points.

The Hydra Optuna sweeper (hydra-optuna-sweeper 1.3) has no option to enqueue trials, and
Hydra only instantiates sweepers from the ``hydra_plugins`` package, so a sweeper subclass
cannot be configured from this project. The sampler, however, is any ``_target_``:
:class:`FirstTrialsSampler` wraps a sampler (TPE by default) and answers the first trials of
a study with given points, so a search starts from known settings (e.g. the authors' masking
policies) and then samples as usual, learning from those trials like from any other.

Configured through the ``hydra/sweeper/sampler`` option ``first_trials``
(``conf/hydra/sweeper/sampler/first_trials.yaml``)::

    defaults:
      - override /hydra/sweeper: optuna
      - override /hydra/sweeper/sampler: first_trials
    hydra:
      sweeper:
        sampler:
          base: {seed: 0, n_startup_trials: 8}
          first_trials:
            - {recipe.mask.p_audio_full: 0.1, recipe.mask.p_other_full: 0.1}

Trial ``i`` (its number in the study) takes ``first_trials[i]``'s value for every
parameter the point names; parameters it does not name are sampled by the base sampler.
A value outside its parameter's search space is an error; a point naming a parameter that
is not searched is reported with a warning after the (completed) trial: Optuna never asks
for it, so the sampler cannot tell before. A
resumed study (persistent ``storage``) whose trials are past the points samples as usual.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler

log = logging.getLogger(__name__)


def _plain(value):
    """OmegaConf containers (as Hydra's instantiate passes them) to plain Python."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


class FirstTrialsSampler(BaseSampler):
    """Answer trial ``i < len(first_trials)`` with ``first_trials[i]``, else ask ``base``.

    Args:
        base: the sampler of every other parameter and trial (an Optuna sampler, or the
            keyword arguments of a :class:`optuna.samplers.TPESampler`; default TPE).
        first_trials: a list of points, each a mapping parameter name -> value.
    """

    def __init__(self, base: Any = None, first_trials: Sequence[Mapping] | None = None):
        base = _plain(base)
        if base is None or isinstance(base, Mapping):
            base = optuna.samplers.TPESampler(**dict(base or {}))
        if not isinstance(base, BaseSampler):
            raise ValueError(
                f"hydra.sweeper.sampler.base must be an Optuna sampler or TPE options, got "
                f"{type(base).__name__}"
            )
        self.base = base
        points = _plain(first_trials) or []
        if not isinstance(points, Sequence) or isinstance(points, str):
            raise ValueError(
                f"hydra.sweeper.sampler.first_trials must be a list of mappings, got {points!r}"
            )
        self.first_trials: list[dict] = []
        for i, point in enumerate(points):
            if not isinstance(point, Mapping):
                raise ValueError(
                    f"hydra.sweeper.sampler.first_trials[{i}] must be a mapping parameter -> "
                    f"value, got {point!r}"
                )
            self.first_trials.append({str(k): v for k, v in point.items()})

    def _point(self, trial) -> dict | None:
        n = trial.number
        return self.first_trials[n] if 0 <= n < len(self.first_trials) else None

    # -- the sampler interface --------------------------------------------------------------
    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        if self._point(trial) is not None:
            return {}
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        if self._point(trial) is not None:
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        point = self._point(trial)
        if point is None or param_name not in point:
            return self.base.sample_independent(study, trial, param_name, param_distribution)
        value = point[param_name]
        try:
            inside = param_distribution._contains(param_distribution.to_internal_repr(value))
        except (TypeError, ValueError):
            inside = False
        if not inside:
            raise ValueError(
                f"hydra.sweeper.sampler.first_trials[{trial.number}]: {param_name}={value!r} "
                f"lies outside its search space {param_distribution}"
            )
        return value

    def after_trial(self, study, trial, state, values) -> None:
        point = self._point(trial)
        if point is not None and state == optuna.trial.TrialState.COMPLETE:
            unused = sorted(set(point) - set(trial.params))
            if unused:
                msg = (
                    f"hydra.sweeper.sampler.first_trials[{trial.number}] sets {unused}, which "
                    f"are not searched parameters (hydra.sweeper.params): ignored"
                )
                log.warning(msg)
                warnings.warn(msg, stacklevel=2)
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


__all__ = ["FirstTrialsSampler"]
