"""The batch type shared by every recipe."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from bridging.data.records import IGNORE_INDEX, MODALITY_ORDER


@dataclass
class DialogueBatch:
    """A batch of whole dialogues, padded to the longest dialogue of the batch.

    - ``features``: modality name -> float tensor [B, T, D_m] (zeros at padded positions);
    - ``lengths``: long [B], number of real utterances per dialogue;
    - ``speakers``: long [B, T] speaker ids (0 at padding);
    - ``labels``: long [B, T] label indices, ``IGNORE_INDEX`` (-100) at padding and where the
      gold label is unknown. ``flat_labels`` gives them flat over real utterances, in
      dialogue-major order, which is the order of every model's flat outputs;
    - ``dialogue_ids``: the dialogues' ids, in batch order;
    - ``index``: long [B], the dialogues' positions in their split (used by caches).
    """

    features: dict[str, torch.Tensor]
    lengths: torch.Tensor
    speakers: torch.Tensor
    labels: torch.Tensor
    dialogue_ids: list[str]
    index: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """Bool [B, T]: True at real utterances."""
        t = self.speakers.shape[1]
        return torch.arange(t, device=self.lengths.device)[None, :] < self.lengths[:, None]

    @property
    def flat_labels(self) -> torch.Tensor:
        return self.labels[self.mask]

    @property
    def flat_speakers(self) -> torch.Tensor:
        return self.speakers[self.mask]

    @property
    def batch_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def modalities(self) -> list[str]:
        return [m for m in MODALITY_ORDER if m in self.features]

    def select(self, modalities) -> DialogueBatch:
        """The same batch with only the given modalities (each must be present)."""
        missing = [m for m in modalities if m not in self.features]
        if missing:
            raise KeyError(f"batch has no modality {missing}; it has {self.modalities}")
        return replace(self, features={m: self.features[m] for m in modalities})

    def to(self, device) -> DialogueBatch:
        return replace(
            self,
            features={k: v.to(device) for k, v in self.features.items()},
            lengths=self.lengths.to(device),
            speakers=self.speakers.to(device),
            labels=self.labels.to(device),
            index=self.index.to(device),
        )


def concat_modalities(features: dict[str, torch.Tensor], modalities) -> torch.Tensor:
    """Concatenate the given modalities along the feature axis, always in the order a, t, v."""
    order = [m for m in MODALITY_ORDER if m in modalities]
    return torch.cat([features[m] for m in order], dim=-1)


__all__ = ["DialogueBatch", "concat_modalities", "IGNORE_INDEX"]
