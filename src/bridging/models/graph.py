"""Dialogue graphs for COGMEN (docs/method.md 2.2), built with tensor operations only.

Nodes are the real utterances of a batch, flat and dialogue-major: node ``k`` of dialogue
``b`` has index ``offset_b + k`` where ``offset_b = sum(lengths[:b])``. For every utterance
``i`` there is an edge ``i -> j`` for each ``j`` of the same dialogue with
``i - wp <= j <= i + wf`` (self loop included; ``-1`` = unbounded on that side). Source is
``i``, target is ``j`` (PyG convention: messages flow source -> target).

Relation types (``relations``, docs/method.md 2.2 and docs/meld.md):

``speaker_pairs`` (COGMEN's, the reference)
    ``(speaker_i * n_speakers + speaker_j) * 2 + (0 if i < j else 1)``: 2 * n_speakers^2
    types (8 for IEMOCAP's 2 speakers, 162 for MELD's 9);
``same_other``
    ``(0 if speaker_i == speaker_j else 1) * 2 + (0 if i < j else 1)``: 4 types whatever the
    number of speakers (same/other speaker x past/future, the usual choice of graph ERC
    models on multi-party data).

No Python loop runs over dialogues, utterances or edges: the whole batch is built from
``repeat_interleave`` / ``arange`` arithmetic, on the device of the inputs. Edges come out
sorted by (source, target).
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_window(name: str, w: int) -> int:
    w = int(w)
    if w < -1:
        raise ValueError(f"{name} must be >= 0 or -1 (unbounded), got {w}")
    return w


def window_edges(lengths: Tensor, wp: int, wf: int) -> Tensor:
    """Window edges of a batch of dialogues as a long tensor [2, E] of flat node indices.

    ``lengths`` is a long tensor [B] of dialogue lengths (real utterances). ``wp`` / ``wf``
    are the past / future windows, ``-1`` meaning the whole past / future of the dialogue.
    """
    wp = check_window("wp", wp)
    wf = check_window("wf", wf)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D [B], got shape {tuple(lengths.shape)}")
    lengths = lengths.long()
    device = lengths.device
    n_dialogues = lengths.shape[0]
    # Per node: its dialogue, its position in the dialogue and the dialogue's length.
    dialogue = torch.repeat_interleave(torch.arange(n_dialogues, device=device), lengths)
    n_nodes = dialogue.shape[0]
    offsets = torch.cumsum(lengths, 0) - lengths
    node_offset = offsets[dialogue]
    node = torch.arange(n_nodes, device=device)
    pos = node - node_offset
    n = lengths[dialogue]
    # Window [lo, hi] of each node, clipped to its dialogue.
    lo = torch.zeros_like(pos) if wp == -1 else (pos - wp).clamp(min=0)
    hi = n - 1 if wf == -1 else torch.minimum(pos + wf, n - 1)
    counts = hi - lo + 1
    n_edges = int(counts.sum())
    source = torch.repeat_interleave(node, counts, output_size=n_edges)
    first_edge = torch.cumsum(counts, 0) - counts  # index of each node's first edge
    rank = torch.arange(n_edges, device=device) - first_edge[source]
    target = node_offset[source] + lo[source] + rank
    return torch.stack([source, target])


def window_edge_count(n: int, wp: int, wf: int) -> int:
    """The number of window edges of one dialogue of ``n`` utterances (what
    :func:`window_edges` builds for it), in closed form: no tensor is made."""

    def reach(w: int) -> int:  # sum over positions i of min(i, w)
        w = n - 1 if w == -1 or w >= n - 1 else w
        return w * (w - 1) // 2 + (n - w) * w if n > 0 else 0

    n = int(n)
    return n + reach(check_window("wp", wp)) + reach(check_window("wf", wf)) if n > 0 else 0


RELATIONS = ("speaker_pairs", "same_other")


def check_relations(relations: str) -> str:
    if relations not in RELATIONS:
        raise ValueError(f"unknown relations {relations!r}: expected one of {RELATIONS}")
    return relations


def relation_of(
    spk_source: Tensor,
    spk_target: Tensor,
    backward: Tensor,
    n_speakers: int,
    relations: str = "speaker_pairs",
) -> Tensor:
    """The relation type of edges (elementwise, broadcasting): source and target speaker ids
    and ``backward`` (1 where the source is not before the target: ``i >= j``)."""
    backward = backward.long()
    if check_relations(relations) == "same_other":
        return (spk_source != spk_target).long() * 2 + backward
    return (spk_source.long() * n_speakers + spk_target.long()) * 2 + backward


def relation_types(
    edge_index: Tensor, flat_speakers: Tensor, n_speakers: int, relations: str = "speaker_pairs"
) -> Tensor:
    """Relation type of every edge (see the module docstring for ``relations``).

    ``flat_speakers`` holds the speaker id of every node (flat, dialogue-major), each in
    ``[0, n_speakers)``.
    """
    if flat_speakers.numel():
        lo, hi = (int(v) for v in torch.aminmax(flat_speakers))
        if lo < 0 or hi >= n_speakers:
            raise ValueError(
                f"speaker ids must lie in [0, {n_speakers}); got values from {lo} to {hi}"
            )
    source, target = edge_index[0], edge_index[1]
    spk = flat_speakers.long()
    return relation_of(spk[source], spk[target], source >= target, n_speakers, relations)


def build_graph(
    lengths: Tensor,
    speakers: Tensor,
    wp: int,
    wf: int,
    n_speakers: int,
    relations: str = "speaker_pairs",
) -> tuple[Tensor, Tensor]:
    """Edges and relation types of a batch of dialogues.

    ``lengths`` [B]; ``speakers`` either padded [B, T] (values at padding are ignored) or
    already flat over the real utterances [N] (``N = lengths.sum()``, dialogue-major).
    Returns ``(edge_index [2, E], edge_type [E])`` on flat node indices.
    """
    lengths = lengths.to(speakers.device)
    if speakers.dim() == 2:
        t = speakers.shape[1]
        speakers = speakers[torch.arange(t, device=speakers.device)[None, :] < lengths[:, None]]
    elif speakers.dim() != 1:
        raise ValueError(
            f"speakers must be [B, T] (padded) or [N] (flat), got {list(speakers.shape)}"
        )
    edge_index = window_edges(lengths, wp, wf)
    return edge_index, relation_types(edge_index, speakers, n_speakers, relations)


#: The same function (speakers flat over real utterances), under its earlier name.
build_graph_flat = build_graph


def n_relations(n_speakers: int, relations: str = "speaker_pairs") -> int:
    """Number of relation types: 2 * n_speakers^2 (speaker_pairs) or 4 (same_other)."""
    if check_relations(relations) == "same_other":
        return 4
    return 2 * n_speakers * n_speakers


__all__ = [
    "window_edge_count",
    "window_edges",
    "relation_types",
    "relation_of",
    "build_graph",
    "build_graph_flat",
    "n_relations",
    "RELATIONS",
]
