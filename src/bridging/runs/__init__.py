"""Runs: the layer between the commands (``bridging.cli``) and the recipes.

Calls go one way: ``cli`` (parsing only) -> ``runs`` -> ``report`` / ``speech`` /
``cogmen_import`` -> ``recipes`` (LightningModules) -> ``models`` / ``losses`` -> ``data`` ->
``utils``. A recipe never builds a Trainer, reads a run dir or imports Hydra; what needs those
lives here:

- :mod:`~bridging.runs.experiment`: one ``bridging-train`` run (the teacher for a student,
  fit and test, the recipe's own evaluations, the run dir);
- :mod:`~bridging.runs.train`: the Trainer, fitting and testing, checkpoints, resuming;
- :mod:`~bridging.runs.teacher`: a student's teacher, found or trained first (config, hash,
  lock, the sweep's shared dir, finished-run detection);
- :mod:`~bridging.runs.evaluate`: ``bridging-eval`` / ``bridging-predict``, a masked model's
  full-modality evaluation, the student-teacher agreement;
- :mod:`~bridging.runs.outputs`: the one builder of metrics.json and the run dir's files;
- :mod:`~bridging.runs.reproduce`: the paper's whole comparison (``bridging-reproduce``), with
  its reference rows (:mod:`~bridging.runs.baselines`) and cost figures
  (:mod:`~bridging.runs.flops`, :mod:`~bridging.runs.precision`);
- the run's infrastructure: :mod:`~bridging.runs.config` (composing the Hydra configs),
  :mod:`~bridging.runs.rundir` (the run dir's guard and lock), :mod:`~bridging.runs.tracking`
  (W&B), :mod:`~bridging.runs.search` (the sweeps' Optuna sampler),
  :mod:`~bridging.runs.allocator` (the C allocator).
"""
