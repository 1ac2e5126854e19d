"""COGMEN (docs/method.md 2): sequence context -> dialogue graph GNN -> classifier.

Plain ``nn.Module``; no Lightning inside. Inputs are padded batches (the modalities already
concatenated in the order a, t, v); outputs are flat over the real utterances, dialogue-major
(the order of ``DialogueBatch.flat_labels``).

Submodule names follow the reference implementation (``rnn`` = sequence context, ``gcn`` =
GNN, ``clf`` = classifier), so reference state dicts map one to one (see
:mod:`bridging.cogmen_import.read`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bridging.losses.nll import masked_nll
from bridging.models.classifier import Classifier
from bridging.models.gnn import GNN
from bridging.models.graph import (
    build_graph,
    check_relations,
    check_window,
    n_relations,
    window_edge_count,
)
from bridging.models.seqcontext import PAD_MODES, SeqContext
from bridging.models.widen import widen

GNN_KINDS = ("rgcn_transformer", "none")


@dataclass
class ModelOutput:
    #: [N, C] log-probabilities, flat over real utterances, dialogue-major.
    log_probs: Tensor
    #: [N, C] scores before log_softmax (for distillation at a temperature).
    logits: Tensor
    #: [N, E] GNN output (after BatchNorm + LeakyReLU); the sequence-context output when
    #: ``gnn="none"``.
    embeddings: Tensor


class COGMEN(nn.Module):
    """COGMEN with every size from arguments.

    - ``input_size``: size of the concatenated input features;
    - ``rnn``: ``"transformer"``, ``"lstm"`` or ``"gru"``; ``seqcontext_nlayer`` layers;
    - ``hidden_size``: transformer output / recurrent units per direction / GNN channels /
      classifier hidden size (100 in the reference);
    - ``gnn``: ``"rgcn_transformer"`` (the reference) or ``"none"`` (sequence context ->
      classifier); ``gnn_nheads``: TransformerConv heads; ``wp`` / ``wf``: graph windows
      (-1 = unbounded); ``n_speakers``: speakers per corpus;
    - ``relations``: ``"speaker_pairs"`` (the reference: 2 * n_speakers^2 relation types) or
      ``"same_other"`` (same/other speaker x past/future: 4); ``num_bases``: RGCN basis
      decomposition (None: none, as the reference; docs/meld.md);
    - ``concat_gin_gout``: feed [GNN input | GNN output] to the classifier;
    - ``use_highway``: one highway layer before the classifier;
    - ``class_weights``: per-class NLL weights (e.g. 1 / training-split frequency);
    - ``pad_mode``: ``"mask"`` (padding masked out of attention) or ``"reference"``;
    - ``dropout_masks``: ``"lanes"`` (cheap masks, :mod:`bridging.models.dropout`) or
      ``"torch"`` (``F.dropout``'s masks, as runs made before) in the sequence context's
      packed encoder (``pad_mode="mask"``).
    """

    def __init__(
        self,
        input_size: int,
        n_classes: int,
        n_speakers: int = 2,
        rnn: str = "transformer",
        hidden_size: int = 100,
        seqcontext_nlayer: int = 2,
        gnn_nheads: int = 1,
        drop_rate: float = 0.5,
        wp: int = 5,
        wf: int = 5,
        gnn: str = "rgcn_transformer",
        concat_gin_gout: bool = False,
        use_highway: bool = False,
        class_weights: Sequence[float] | Tensor | None = None,
        pad_mode: str = "mask",
        dropout_masks: str = "lanes",
        relations: str = "speaker_pairs",
        num_bases: int | None = None,
    ) -> None:
        super().__init__()
        check_relations(relations)
        if gnn not in GNN_KINDS:
            raise ValueError(f"unknown gnn {gnn!r}: expected one of {GNN_KINDS}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}: expected one of {PAD_MODES}")
        if n_classes < 1 or input_size < 1 or n_speakers < 1:
            raise ValueError(
                f"bad sizes: input_size={input_size}, n_classes={n_classes}, "
                f"n_speakers={n_speakers}"
            )
        check_window("wp", wp)
        check_window("wf", wf)
        self.input_size = int(input_size)
        self.n_classes = int(n_classes)
        self.n_speakers = int(n_speakers)
        self.wp = int(wp)
        self.wf = int(wf)
        self.gnn_kind = gnn
        self.relations = relations
        self.concat_gin_gout = bool(concat_gin_gout) and gnn != "none"

        self.rnn = SeqContext(
            self.input_size,
            rnn=rnn,
            hidden_size=hidden_size,
            nlayer=seqcontext_nlayer,
            drop_rate=drop_rate,
            pad_mode=pad_mode,
            dropout_masks=dropout_masks,
        )
        g = self.rnn.output_size
        if gnn == "none":
            self.gcn = None
            self.embedding_size = g
            clf_in = g
        else:
            self.gcn = GNN(
                g,
                hidden_size,
                n_relations(self.n_speakers, relations),
                heads=gnn_nheads,
                num_bases=num_bases,
            )
            self.embedding_size = self.gcn.output_size
            clf_in = self.embedding_size + (g if self.concat_gin_gout else 0)
        self.clf = Classifier(clf_in, hidden_size, self.n_classes, drop_rate, use_highway)

        if class_weights is not None:
            cw = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
            if cw.numel() != self.n_classes:
                raise ValueError(
                    f"class_weights has {cw.numel()} values for {self.n_classes} classes"
                )
            self.register_buffer("class_weights", cw, persistent=False)
        else:
            self.class_weights = None

    def forward(self, x: Tensor, lengths: Tensor, speakers: Tensor) -> ModelOutput:
        """``x`` [B, T, D] (zeros at padding), ``lengths`` [B], ``speakers`` [B, T]."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"expected input [B, T, {self.input_size}], got {tuple(x.shape)}")
        b, t, _ = x.shape
        if lengths.shape != (b,) or speakers.shape[:2] != (b, t):
            raise ValueError(
                f"lengths {tuple(lengths.shape)} / speakers {tuple(speakers.shape)} do not "
                f"match input {tuple(x.shape)}"
            )
        lengths = lengths.to(x.device)
        if b:
            shortest, longest = torch.stack(list(torch.aminmax(lengths))).tolist()  # one sync
        if b and (shortest < 1 or longest > t):
            raise ValueError(f"dialogue lengths must lie in [1, {t}], got {lengths.tolist()}")
        mask = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
        feats = self.rnn(x, lengths, mask)  # [N, g], flat over real utterances
        if self.gcn is None:
            emb = feats
            clf_in = feats
        else:
            edge_index, edge_type = build_graph(
                lengths,
                speakers.to(x.device)[mask],
                self.wp,
                self.wf,
                self.n_speakers,
                self.relations,
            )
            emb = self.gcn(feats, edge_index, edge_type)
            clf_in = torch.cat([feats, emb], dim=-1) if self.concat_gin_gout else emb
        # float32 outputs under autocast too: log_softmax, the losses and the teacher's
        # cache never see bfloat16
        logits = widen(self.clf(clf_in))
        emb = widen(emb)
        return ModelOutput(log_probs=F.log_softmax(logits, dim=-1), logits=logits, embeddings=emb)

    def memory_bytes(self, n: int, training: bool = True, padded_batch: int = 1) -> int:
        """About the peak memory (bytes, float32) of the model over one dialogue of ``n``
        utterances, what grows with its length (BENCHMARKS.md, "Long dialogues"): the
        sequence context's attention (:meth:`SeqContext.memory_bytes`) and the graph
        network's per-edge messages, measured at about 6 x heads x hidden floats per window
        edge in a training step and 4 in evaluation (edges: :func:`window_edge_count`, n x
        (wp + wf + 1) at most, n^2 with unbounded windows)."""
        total = self.rnn.memory_bytes(n, training, padded_batch)
        if self.gcn is not None:
            edges = window_edge_count(n, self.wp, self.wf)  # real utterances only
            total += 4 * (6 if training else 4) * self.gcn.heads * self.gcn.hidden_size * edges
        return total

    def loss(self, out: ModelOutput, flat_labels: Tensor) -> Tensor:
        """NLL averaged over utterances whose label is not IGNORE_INDEX, with the model's
        class weights (:func:`bridging.losses.nll.masked_nll`)."""
        return masked_nll(out.log_probs, flat_labels, self.class_weights)


__all__ = ["COGMEN", "ModelOutput", "GNN_KINDS"]
