"""Runs: the layer between the commands (``bridging.cli``) and the recipes.

Calls go one way: ``cli`` (parsing only) -> ``runs`` -> ``recipes`` (LightningModules) ->
``models`` / ``data``. A recipe never builds a Trainer, reads a run dir or imports Hydra;
what needs those lives here:

- :mod:`~bridging.runs.experiment`: one ``bridging-train`` run (the teacher for a student,
  fit and test, the recipe's own evaluations, the run dir);
- :mod:`~bridging.runs.train`: the Trainer, fitting and testing, checkpoints, resuming;
- :mod:`~bridging.runs.teacher`: a student's teacher, found or trained first (config, hash,
  lock, the sweep's shared dir, finished-run detection);
- :mod:`~bridging.runs.evaluate`: ``bridging-eval`` / ``bridging-predict``, a masked model's
  full-modality evaluation, the student-teacher agreement;
- :mod:`~bridging.runs.outputs`: the one builder of metrics.json and the run dir's files;
- :mod:`~bridging.runs.reproduce`: the paper's whole comparison (``bridging-reproduce``).
"""
