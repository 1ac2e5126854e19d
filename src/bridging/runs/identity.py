"""A run's identity: the data, protocol, fold, dev rule, label set and feature normalisation
a model was trained on.

Every checkpoint a training run writes carries its *binding* (``checkpoint["bridging"]
["binding"]``, :func:`run_binding`): the loaded corpus's content fingerprint
(:meth:`bridging.data.records.Corpus.fingerprint`, the same under every fold), where it came
from, the protocol, fold, dev rule, label set and normalisation (``data.normalize`` and its
prior), and the ids of the dialogues the model was trained on (``train``) and selected on
(``dev``). The run's metrics.json holds the same binding without the ids
(:func:`binding_summary`).

- Resuming (``ckpt_path=last`` or a path) checks the run's data against it
  (:func:`check_resume_identity`): another label set, protocol, fold, dev rule, normalisation
  (or training statistics that differ from the checkpoint's) or data content
  (another file, or the same file changed, even with the same feature sizes) is refused with
  one line naming both values, as is a ``trainer.max_epochs`` below the epochs the checkpoint
  has already trained. A checkpoint written before the binding existed is checked on what its
  hyper-parameters record (label set, protocol, fold, dev rule); its data content cannot be
  checked (a warning says so), and the resumed run's checkpoints then carry the binding.
- ``bridging-eval`` and ``bridging-predict`` refuse a split that holds dialogues the model was
  trained or selected on (:func:`check_overlap`: the test split against the model's train and
  dev dialogues, the dev split against its train dialogues), unless ``allow_overlap=true``,
  which the output then records. Dialogues are compared by id (IEMOCAP's ids name the
  recording), so the same dialogues in another file or format are caught too. The model's
  dialogues are the ids its checkpoint records; for a checkpoint without them they are
  derived by applying the model's own protocol, fold and dev rule to the data given (exact
  when that is the data it was trained on).
"""

from __future__ import annotations

import logging
from pathlib import Path

from bridging.data.records import DataError

log = logging.getLogger(__name__)

#: the key of the binding in ``checkpoint["bridging"]`` and in a run's metrics.json
BINDING_KEY = "binding"
#: the splits whose dialogues a model has seen before a split is evaluated: the test split
#: must be new to it, the dev split must not be one it trained on
SEEN_BEFORE = {"test": ("train", "dev"), "dev": ("train",), "train": ()}
#: the model's splits whose dialogue ids the binding records
RECORDED_SPLITS = ("train", "dev")


def run_binding(datamodule) -> dict:
    """The binding of a model trained on ``datamodule`` (set up): fingerprint, source,
    protocol, fold, dev rule, label set and the ids of its train and dev dialogues."""
    return {
        **binding_summary(datamodule),
        "dialogues": {
            name: list(datamodule.splits[name].ids) if name in datamodule.splits else []
            for name in RECORDED_SPLITS
        },
    }


def binding_summary(datamodule) -> dict:
    """What metrics.json records of the binding: everything but the dialogue ids."""
    facts = datamodule.facts
    return {
        "fingerprint": datamodule.fingerprint,
        "source": facts.path or f"<{facts.source_format}>",
        "label_set": facts.label_set,
        "protocol": facts.protocol,
        "fold": facts.fold,
        "dev_rule": facts.dev_rule,
        "normalize": (facts.normalization or {}).get("mode", "none"),
        "normalize_prior": float((facts.normalization or {}).get("prior", 1.0)),
    }


def checkpoint_binding(ckpt: dict) -> dict | None:
    """The binding a checkpoint records, or None (written before bindings existed)."""
    binding = (ckpt.get("bridging") or {}).get(BINDING_KEY)
    return binding if isinstance(binding, dict) else None


def _facts_binding(ckpt: dict) -> dict:
    """What an old checkpoint's hyper-parameters say of its binding (no fingerprint, no ids);
    facts written before the protocols existed mean the paper split."""
    facts = (ckpt.get("hyper_parameters") or {}).get("facts") or {}
    return {
        "fingerprint": None,
        "source": facts.get("path") or f"<{facts.get('source_format', 'unknown')}>",
        "label_set": facts.get("label_set"),
        "protocol": facts.get("protocol", "paper"),
        "fold": facts.get("fold"),
        "dev_rule": facts.get("dev_rule", "source"),
        "normalize": (facts.get("normalization") or {}).get("mode", "none"),
        "normalize_prior": float((facts.get("normalization") or {}).get("prior", 1.0)),
    }


#: binding values of runs recorded before the key existed
BINDING_DEFAULTS = {"normalize": "none", "normalize_prior": 1.0}


def _short(fingerprint) -> str:
    return str(fingerprint)[:12]


def resume_where(resume, output_dir) -> str:
    """How a resume refusal names the run: the run dir when the checkpoint is its own, else
    the checkpoint."""
    try:
        if Path(resume).resolve().is_relative_to(Path(output_dir).resolve()):
            return str(output_dir)
    except OSError:
        pass
    return str(resume)


def binding_mismatch(trained: dict, asked: dict, content: bool = True) -> str | None:
    """``<field>: the run was trained with X, this resume asks for Y`` for the first value of
    the binding that differs (the data content too unless not ``content``), or None."""
    for key, field, what in (
        ("label_set", "data.label_set", "label set "),
        ("protocol", "data.protocol", "protocol "),
        ("fold", "data.fold", "fold "),
        ("dev_rule", "data.dev", "dev rule "),
        ("normalize", "data.normalize", "normalisation "),
        ("normalize_prior", "data.normalize_prior", "prior "),
    ):
        old = trained.get(key, BINDING_DEFAULTS.get(key))
        new = asked.get(key, BINDING_DEFAULTS.get(key))
        if old != new:
            return f"{field}: the run was trained with {what}{old}, this resume asks for {new}"
    if not content:
        return None
    if trained.get("fingerprint") and trained["fingerprint"] != asked.get("fingerprint"):
        old, new = trained.get("source"), asked.get("source")
        field = "data.synthetic" if str(new).startswith("<") and old == new else "data.path"
        return (
            f"{field}: the run was trained on {old} with content fingerprint "
            f"{_short(trained['fingerprint'])}, this resume's data ({new}) has "
            f"{_short(asked.get('fingerprint'))}: resume on the data the run was trained on"
        )
    return None


def check_resume_identity(resume, cfg, datamodule, output_dir) -> dict:
    """Before a resume does any work: the checkpoint's binding must be this run's data
    (see the module doc) and ``trainer.max_epochs`` at least the epochs it has trained.
    Errors (a DataError) name the run dir (or the checkpoint) and the field. Returns the
    checkpoint."""
    from bridging.recipes import check_data_fits, read_checkpoint

    ckpt = read_checkpoint(resume)
    where = resume_where(resume, output_dir)
    trained = checkpoint_binding(ckpt)
    if trained is None:
        trained = _facts_binding(ckpt)
        log.warning(
            "%s: the checkpoint records no data fingerprint (written before runs recorded "
            "one): only its label set, protocol, fold and dev rule are checked",
            resume,
        )
    asked = binding_summary(datamodule)
    problem = binding_mismatch(trained, asked, content=False)
    if problem:
        raise DataError(f"{where}: {problem}")
    # other feature sizes change the content too: the sizes' own message says more
    facts = datamodule.facts
    check_data_fits(resume, ckpt["hyper_parameters"]["facts"], facts, facts.modalities)
    problem = binding_mismatch(trained, asked)
    if problem:
        raise DataError(f"{where}: {problem}")
    from bridging.data.normalize import Normalization

    stored = Normalization.from_dict(ckpt["hyper_parameters"]["facts"].get("normalization"), where)
    if not stored.same_as(datamodule.normalization, facts.modalities):
        raise DataError(
            f"{where}: facts.normalization: the run's training statistics differ from those "
            "fitted on this resume's training split: resume on the data the run was trained on"
        )
    done = int(ckpt.get("epoch", -1)) + 1
    wanted = (cfg.get("trainer") or {}).get("max_epochs")
    if isinstance(wanted, int) and wanted != -1 and wanted < done:
        raise DataError(
            f"{where}: trainer.max_epochs: the run has trained {done} epochs "
            f"({Path(resume).name}), this resume asks for {wanted}: give "
            f"trainer.max_epochs={done} or more"
        )
    return ckpt


# -- evaluation: the evaluated split must be new to the model ---------------------------------
def seen_dialogues(recipe, datamodule) -> tuple[dict[str, set], str]:
    """The ids of the model's train and dev dialogues, and how they are known: ``recorded``
    (its checkpoint's binding), ``derived`` (its protocol applied to ``datamodule``'s data)
    or ``unknown`` (neither: the data cannot be split as the model's was, so it is not the
    model's data)."""
    from bridging.data.protocols import Protocol

    binding = getattr(recipe, "binding", None)
    if isinstance(binding, dict) and isinstance(binding.get("dialogues"), dict):
        recorded = binding["dialogues"]
        return {s: set(recorded.get(s) or ()) for s in RECORDED_SPLITS}, "recorded"
    facts = recipe.facts
    dev = "auto" if facts.dev_rule in (None, "source") else facts.dev_rule
    try:
        protocol = Protocol.from_config(facts.protocol or "paper", facts.fold, dev)
        corpus = protocol.apply(datamodule.loaded)
    except DataError:
        return {s: set() for s in RECORDED_SPLITS}, "unknown"
    return {s: {d.id for d in corpus.splits.get(s, [])} for s in RECORDED_SPLITS}, "derived"


def _model_split(recipe) -> str:
    facts = recipe.facts
    binding = getattr(recipe, "binding", None) or {}
    source = binding.get("source") or facts.path or f"<{facts.source_format}>"
    if facts.protocol == "loso":
        return f"loso fold {facts.fold} (dev rule {facts.dev_rule}) of {source}"
    return f"the paper split of {source}"


def _asked_field(recipe, datamodule, split: str) -> str:
    """The option that made the evaluated split overlap the model's: the first of the
    protocol, fold, dev rule and data file that differs from the model's, else the split."""
    if split != "test":
        return f"split={split}"
    model, data = recipe.facts, datamodule.facts
    for key, field in (("protocol", "data.protocol"), ("fold", "data.fold")):
        if getattr(model, key) != getattr(data, key):
            return f"{field}={getattr(data, key)}"
    if model.dev_rule != data.dev_rule:
        return f"data.dev={data.dev_rule}"
    return f"data.path={data.path or '<' + data.source_format + '>'}"


def check_overlap(recipe, datamodule, split: str, allow: bool = False, where=None) -> dict:
    """Refuse (a DataError naming the checkpoint and the option) to evaluate ``recipe`` on a
    ``split`` of ``datamodule`` that holds dialogues the model was trained or selected on
    (:data:`SEEN_BEFORE`), unless ``allow``. Returns what the output records:
    ``{"allow_overlap", "seen_by", "dialogues", "train", "dev"}`` (counts of the evaluated
    dialogues the model has seen, by its split) and, for predictions, ``model_split``:
    dialogue id -> the model's split that held it."""
    seen, how = seen_dialogues(recipe, datamodule)
    ids = datamodule.split(split).ids
    model_split = {}
    for name in SEEN_BEFORE[split]:
        for i in ids:
            if i in seen[name]:
                model_split.setdefault(i, name)
    counts = {name: sum(1 for s in model_split.values() if s == name) for name in RECORDED_SPLITS}
    record = {
        "allow_overlap": bool(allow),
        "seen_by": how,
        "dialogues": len(model_split),
        **counts,
    }
    if model_split and not allow:
        where = where or getattr(recipe, "checkpoint_path", None) or "the model"
        by = ", ".join(f"{counts[s]} in its {s} split" for s in SEEN_BEFORE[split])
        first = next(i for i in ids if i in model_split)
        raise DataError(
            f"{where}: {_asked_field(recipe, datamodule, split)}: the {split} split holds "
            f"{len(model_split)} dialogues the model has seen ({by}; e.g. {first}): it was "
            f"trained on {_model_split(recipe)}; evaluate it on its own test split, or give "
            "allow_overlap=true to do it anyway (recorded in the output)"
        )
    if model_split:
        log.warning(
            "%s: allow_overlap=true: %d of the %d %s dialogues were seen by the model "
            "(train %d, dev %d)",
            where or getattr(recipe, "checkpoint_path", "the model"),
            len(model_split),
            len(ids),
            split,
            counts["train"],
            counts["dev"],
        )
    return {**record, "model_split": model_split}


__all__ = [
    "BINDING_KEY",
    "binding_mismatch",
    "binding_summary",
    "check_overlap",
    "check_resume_identity",
    "checkpoint_binding",
    "run_binding",
    "seen_dialogues",
]
