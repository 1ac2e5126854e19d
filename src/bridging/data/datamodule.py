"""The LightningDataModule shared by every recipe (IEMOCAP, MELD, their synthetic presets).

Tensors are built once per split when the data is set up: per modality a zero-padded
``[n_dialogues, T_max, D]`` tensor, plus lengths, speakers and labels. A batch is then one
index operation per tensor (no Python loop over utterances), trimmed to the longest
dialogue of the batch.

Labels are padded with ``IGNORE_INDEX`` (-100); ``DialogueBatch.flat_labels`` gives them
flat over real utterances, dialogue-major, the order of every model's outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from bridging.data.batch import DialogueBatch
from bridging.data.normalize import Normalization, check_mode
from bridging.data.protocols import Protocol, sessions_of
from bridging.data.records import IGNORE_INDEX, Corpus, DataError, Dialogue, ordered_modalities
from bridging.data.speakers import split_actor_ids

SPLITS = ("train", "dev", "test")


@dataclass
class DatasetFacts:
    """What models need to know about the data: sizes, classes, speakers, frequencies."""

    modalities: list[str]
    feature_sizes: dict[str, int]
    label_set: str
    label_names: list[str]
    n_speakers: int
    speaker_names: list[str]
    class_counts: list[int]  # of the training split
    source_format: str
    path: str | None
    extractors: dict = field(default_factory=dict)
    #: the split protocol (docs/protocols.md); defaults = checkpoints made before it existed
    protocol: str = "paper"
    fold: int | None = None
    dev_rule: str = "source"
    #: feature normalisation and its training statistics (:mod:`bridging.data.normalize`;
    #: checkpoints made before it existed: none)
    normalization: dict = field(default_factory=lambda: {"mode": "none", "prior": 1.0})

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def input_size(self, modalities) -> int:
        missing = [m for m in modalities if m not in self.feature_sizes]
        if missing:
            raise DataError(
                f"modality {missing} asked for but the data ({self.path or self.source_format}) "
                f"has only {sorted(self.feature_sizes)}"
            )
        return sum(self.feature_sizes[m] for m in modalities)

    def class_frequencies(self) -> list[float]:
        total = max(1, sum(self.class_counts))
        return [c / total for c in self.class_counts]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DatasetFacts:
        return cls(**d)


class SplitTensors:
    """One split as padded tensors; ``batch(index)`` builds a DialogueBatch.
    ``speaker_names``: the corpus's names of the speaker codes, for the actor ids
    (:mod:`bridging.data.speakers`)."""

    def __init__(self, dialogues: list[Dialogue], modalities: list[str], speaker_names=("M", "F")):
        n = len(dialogues)
        lengths = np.fromiter((len(d) for d in dialogues), dtype=np.int64, count=n)
        t_max = int(lengths.max()) if n else 0
        self.ids = [d.id for d in dialogues]
        self.lengths = torch.from_numpy(lengths)
        # (dialogue, position) of every real utterance, dialogue-major
        dlg = torch.repeat_interleave(torch.arange(n), self.lengths)
        starts = torch.cumsum(self.lengths, 0) - self.lengths
        pos = torch.arange(int(lengths.sum())) - torch.repeat_interleave(starts, self.lengths)
        self.speakers = torch.zeros(n, t_max, dtype=torch.long)
        self.speakers[dlg, pos] = torch.from_numpy(np.concatenate([d.speakers for d in dialogues]))
        self.labels = torch.full((n, t_max), IGNORE_INDEX, dtype=torch.long)
        self.labels[dlg, pos] = torch.from_numpy(np.concatenate([d.labels for d in dialogues]))
        # speaker ids across the split's dialogues (IEMOCAP: actor = session + gender)
        ids, self.actor_names = split_actor_ids(dialogues, speaker_names)
        self.actors = torch.full((n, t_max), -1, dtype=torch.long)
        self.actors[dlg, pos] = torch.from_numpy(np.concatenate(ids))
        self.features: dict[str, torch.Tensor] = {}
        for m in modalities:
            flat = np.concatenate([d.features[m] for d in dialogues]).astype(np.float32, copy=False)
            padded = torch.zeros(n, t_max, flat.shape[1], dtype=torch.float32)
            padded[dlg, pos] = torch.from_numpy(flat)
            self.features[m] = padded

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_utterances(self) -> int:
        return int(self.lengths.sum())

    def speakers_per_dialogue(self) -> dict[str, int]:
        """How many dialogues have 1, 2, ... distinct speakers (keys as strings, JSON-ready)."""
        n, t = self.speakers.shape
        real = torch.arange(t)[None, :] < self.lengths[:, None]
        width = int(self.speakers.max()) + 1 if self.speakers.numel() else 1
        seen = torch.zeros(n, width, dtype=torch.bool)
        rows = torch.arange(n)[:, None].expand(n, t)
        seen[rows[real], self.speakers[real]] = True
        counts = torch.bincount(seen.sum(1), minlength=1).tolist()
        return {str(k): int(c) for k, c in enumerate(counts) if c}

    def batch(self, index) -> DialogueBatch:
        index = torch.as_tensor(index, dtype=torch.long)
        t = int(self.lengths[index].max())
        return DialogueBatch(
            features={m: f[index, :t] for m, f in self.features.items()},
            lengths=self.lengths[index],
            speakers=self.speakers[index, :t],
            labels=self.labels[index, :t],
            dialogue_ids=[self.ids[i] for i in index.tolist()],
            index=index,
        )

    def loader(self, batch_size: int, shuffle: bool, num_workers: int = 0, **kw) -> DataLoader:
        return DataLoader(
            range(len(self)),
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=self.batch,
            num_workers=num_workers,
            **kw,
        )


class IEMOCAPDataModule(pl.LightningDataModule):
    """IEMOCAP or MELD dialogues (or their synthetic presets) for every recipe.

    Args:
        path: a data file or directory (COGMEN pickle, DialogueRNN pickle, MELD pickle,
            bridging's own format); ``None`` uses the synthetic generator with ``synthetic``
            options (``synthetic.preset=meld`` for MELD-shaped data).
        format: ``auto`` (detected from the content), ``cogmen``, ``dialoguernn``, ``meld``,
            ``native``.
        label_set: ``iemocap_4``, ``iemocap_6``, ``meld_7`` or ``meld_3`` (explicit: never
            guessed).
        modalities: the modalities the recipe receives, by name (a, t, v).
        batch_size: dialogues per training batch; ``eval_batch_size`` for dev/test/predict.
        dev_split: how a MELD file's dev split is recovered from ``trainVid``: ``auto``,
            ``official`` (MELD's dialogue ids) or ``first_fraction`` (docs/meld.md); other
            data accept ``auto``.
        max_speakers: refuse dialogues with more speakers (naming them) and size the model's
            speaker handling to it (``None``: as stored, 2 for IEMOCAP, 9 for MELD).
        protocol: ``paper`` (the source's splits) or ``loso`` (leave one IEMOCAP session
            out, with ``fold`` 1..5 the test session); ``dev``: ``auto``, ``next_session`` or
            ``within_train`` (loso only). See :mod:`bridging.data.protocols`.
        normalize: feature normalisation, ``none`` (default, COGMEN's), ``global``,
            ``speaker`` (transductive: a test speaker's statistics come from its unlabelled
            test features) or ``online`` (causal, per speaker over the conversation so far);
            ``normalize_prior``: pseudo-utterances at the training statistics in every
            per-speaker estimate. See :mod:`bridging.data.normalize`.
        normalization: a fitted state (a checkpoint's ``facts.normalization``) to apply
            instead of fitting on the training split: how eval and predict reuse a model's.
    """

    def __init__(
        self,
        path: str | None = None,
        format: str = "auto",
        label_set: str = "iemocap_4",
        modalities=("a", "t", "v"),
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        shuffle: bool = True,
        num_workers: int = 0,
        synthetic: dict | None = None,
        corpus: Corpus | None = None,
        dev_split: str = "auto",
        max_speakers: int | None = None,
        protocol: str = "paper",
        fold: int | None = None,
        dev: str = "auto",
        normalize: str = "none",
        normalize_prior: float = 1.0,
        normalization: dict | None = None,
    ):
        super().__init__()
        self.path = path
        self.format = format
        self.label_set = label_set
        self.modalities = ordered_modalities(modalities)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.shuffle = shuffle
        self.num_workers = num_workers
        self.synthetic = dict(synthetic or {})
        self.corpus = corpus
        self.dev_split = dev_split
        self.max_speakers = None if max_speakers is None else int(max_speakers)
        where = path or (corpus.where() if corpus is not None else "<synthetic>")
        self.protocol = Protocol.from_config(protocol, fold, dev, where=str(where))
        if normalization is not None:
            self.given_normalization: Normalization | None = Normalization.from_dict(
                dict(normalization), where=str(where)
            )
            self.normalize, self.normalize_prior = (
                self.given_normalization.mode,
                self.given_normalization.prior,
            )
        else:
            self.given_normalization = None
            self.normalize, self.normalize_prior = check_mode(
                normalize, normalize_prior, where=str(where)
            )
        #: the normalisation applied to the features (fitted or given), after setup
        self.normalization: Normalization | None = None
        self.splits: dict[str, SplitTensors] = {}
        self._facts: DatasetFacts | None = None
        #: the loaded corpus's content fingerprint (:meth:`Corpus.fingerprint`), before the
        #: protocol re-splits it: the same data gives the same one under every fold
        self.fingerprint: str | None = None
        #: the loaded corpus with the source's own splits, before the protocol re-splits it
        #: (what a model's splits are derived from, :mod:`bridging.runs.identity`)
        self.loaded: Corpus | None = None

    # -- loading -------------------------------------------------------------------------
    def load_corpus(self) -> Corpus:
        from bridging.data.validate import limit_speakers

        if self.corpus is not None:
            return limit_speakers(self.corpus, self.max_speakers)
        if self.path is None:
            from bridging.data.synthetic import synthesize

            if self.dev_split != "auto":
                raise DataError(
                    f"data.dev_split={self.dev_split} applies to MELD files; the synthetic "
                    "corpus has its own dev split: use dev_split=auto"
                )
            opts = dict(self.synthetic)
            opts.setdefault("label_set", self.label_set)
            return limit_speakers(synthesize(**opts), self.max_speakers)
        from bridging.data.formats.sources import load_corpus

        return load_corpus(
            self.path,
            format=self.format,
            label_set=self.label_set,
            dev_split=self.dev_split,
            max_speakers=self.max_speakers,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        from bridging.data.validate import validate_corpus

        corpus = self.load_corpus()
        if self.fingerprint is None:
            self.fingerprint = corpus.fingerprint()
            self.loaded = corpus
        if corpus.label_set != self.label_set:
            raise DataError(
                f"{corpus.where()}: label set is {corpus.label_set!r}, config asks for "
                f"{self.label_set!r}"
            )
        corpus = self.protocol.apply(corpus)  # idempotent: add_modalities() sets up again
        validate_corpus(corpus, self.modalities)
        self.corpus = corpus
        self.splits = {
            name: SplitTensors(dialogues, self.modalities, corpus.speaker_names)
            for name, dialogues in corpus.splits.items()
            if dialogues
        }
        self._normalize(corpus)
        train = self.splits["train"]
        counts = torch.bincount(
            train.labels[train.labels != IGNORE_INDEX], minlength=len(corpus.label_names)
        )
        self._facts = DatasetFacts(
            modalities=list(self.modalities),
            feature_sizes={m: int(train.features[m].shape[-1]) for m in self.modalities},
            label_set=corpus.label_set,
            label_names=list(corpus.label_names),
            n_speakers=corpus.n_speakers,
            speaker_names=list(corpus.speaker_names),
            class_counts=[int(c) for c in counts.tolist()],
            source_format=corpus.source_format,
            path=corpus.path,
            extractors=dict(corpus.extractors),
            normalization=self.normalization.to_dict(),
            **self.protocol.describe(),
        )

    def _normalize(self, corpus: Corpus) -> None:
        """Fit (on the training split's real utterances) or take the normalisation, and
        apply it to every split's features."""
        if self.given_normalization is not None:
            norm = self.given_normalization
        else:
            train = self.splits.get("train")
            feats = {}
            if train is not None and self.normalize != "none":
                valid = torch.arange(train.labels.shape[1])[None, :] < train.lengths[:, None]
                feats = {m: f[valid].numpy() for m, f in train.features.items()}
            norm = Normalization.fit(self.normalize, self.normalize_prior, feats)
        self.normalization = norm
        if not norm.active:
            return
        for split in self.splits.values():
            split.features = norm.apply_padded(
                split.features,
                split.lengths,
                split.speakers,
                corpus.n_speakers,
                actors=split.actors if norm.mode == "speaker" else None,
                where=corpus.where(),
            )

    def add_modalities(self, needed) -> list[str]:
        """Also load ``needed`` modalities (e.g. a teacher's besides its student's); the
        corpus stays in memory, only the tensors are rebuilt. Returns the missing ones."""
        missing = [m for m in ordered_modalities(needed) if m not in self.modalities]
        if missing:
            self.modalities = ordered_modalities(set(self.modalities) | set(missing))
            self.splits = {}
            self._facts = None
            self.setup()
        return missing

    @property
    def facts(self) -> DatasetFacts:
        if self._facts is None:
            self.setup()
        return self._facts

    def summary(self) -> dict:
        """Counts per split (dialogues, utterances, labels) and the facts, JSON-ready."""
        self.setup()
        out = {
            "format": self.facts.source_format,
            "path": self.facts.path,
            "label_set": self.facts.label_set,
            "label_names": self.facts.label_names,
            "modalities": self.facts.modalities,
            "feature_sizes": self.facts.feature_sizes,
            "speakers": self.facts.speaker_names,
            "n_speakers": self.facts.n_speakers,
            "splits": {},
            # per split: how many dialogues have 1, 2, ... distinct speakers
            "speakers_per_dialogue": {},
        }
        if self.corpus is not None and self.corpus.split_rule:
            out["dev_split"] = self.corpus.split_rule
        out["fingerprint"] = self.fingerprint
        if self.path is None and self.facts.source_format == "synthetic":
            from omegaconf import OmegaConf

            from bridging.data.synthetic import DEFAULT_PRESET

            given = OmegaConf.to_container(OmegaConf.create(dict(self.synthetic)))
            out["synthetic"] = {"preset": DEFAULT_PRESET, "seed": 0, **given}
        out.update(self.protocol.describe())
        out["normalize"] = self.normalization.describe() if self.normalization else "none"
        for name, split in self.splits.items():
            labels = split.labels[split.labels != IGNORE_INDEX]
            counts = torch.bincount(labels, minlength=self.facts.n_classes).tolist()
            out["splits"][name] = {
                "dialogues": len(split),
                "utterances": split.n_utterances,
                "label_counts": dict(zip(self.facts.label_names, counts)),
            }
            if self.protocol.name == "loso":
                out["splits"][name]["sessions"] = sessions_of(split.ids, self.corpus.where())
            out["speakers_per_dialogue"][name] = split.speakers_per_dialogue()
        return out

    # -- loaders -------------------------------------------------------------------------
    def split(self, name: str) -> SplitTensors:
        self.setup()
        if name not in self.splits:
            raise DataError(
                f"{self.facts.path or self.facts.source_format}: split {name!r} is empty or "
                f"absent; splits present: {sorted(self.splits)}"
            )
        return self.splits[name]

    def train_dataloader(self):
        return self.split("train").loader(self.batch_size, self.shuffle, self.num_workers)

    def val_dataloader(self):
        return self.split("dev").loader(self.eval_batch_size, False, self.num_workers)

    def test_dataloader(self):
        return self.split("test").loader(self.eval_batch_size, False, self.num_workers)

    def predict_dataloader(self, split: str = "test"):
        return self.split(split).loader(self.eval_batch_size, False, self.num_workers)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)
