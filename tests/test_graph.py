"""Window graph and relation types against a slow loop written here (docs/method.md 2.2)."""

from __future__ import annotations

import pytest
import torch

from bridging.models.graph import build_graph, n_relations, relation_types, window_edges


def slow_graph(lengths, speakers, wp, wf, n_speakers):
    """Edge -> relation type, one edge at a time, straight from the definition."""
    edges = {}
    offset = 0
    for b, n in enumerate(lengths):
        for i in range(n):
            for j in range(n):
                if (wp == -1 or j >= i - wp) and (wf == -1 or j <= i + wf):
                    si, sj = int(speakers[b][i]), int(speakers[b][j])
                    rel = (si * n_speakers + sj) * 2 + (0 if i < j else 1)
                    edges[(offset + i, offset + j)] = rel
        offset += n
    return edges


def as_dict(edge_index, edge_type):
    pairs = [tuple(p) for p in edge_index.t().tolist()]
    assert len(pairs) == len(set(pairs)), "duplicate edges"
    return dict(zip(pairs, edge_type.tolist()))


WINDOWS = [(5, 5), (0, 0), (-1, -1), (-1, 0), (0, -1), (-1, 3), (2, -1), (1, 7), (10, 2)]


@pytest.mark.parametrize("wp,wf", WINDOWS)
@pytest.mark.parametrize("n_speakers", [1, 2, 3])
def test_graph_matches_slow_loop(wp, wf, n_speakers):
    gen = torch.Generator().manual_seed(hash((wp, wf, n_speakers)) % 2**31)
    for trial in range(6):
        b = int(torch.randint(1, 7, (1,), generator=gen))
        lengths = torch.randint(1, 16, (b,), generator=gen)
        if trial == 0:
            lengths[0] = 1  # a one-utterance dialogue
        t = int(lengths.max()) + int(torch.randint(0, 3, (1,), generator=gen))
        if trial % 3 == 0:
            speakers = torch.randint(0, n_speakers, (b, t), generator=gen)  # random
        elif trial % 3 == 1:
            speakers = (torch.arange(t)[None, :].expand(b, t) % n_speakers).clone()  # alternate
        else:
            speakers = torch.full((b, t), n_speakers - 1)  # one speaker throughout
        speakers[torch.arange(t)[None, :] >= lengths[:, None]] = 0  # padding
        edge_index, edge_type = build_graph(lengths, speakers, wp, wf, n_speakers)
        assert edge_index.dtype == torch.long and edge_type.dtype == torch.long
        assert edge_index.shape == (2, edge_type.shape[0])
        got = as_dict(edge_index, edge_type)
        want = slow_graph(lengths.tolist(), speakers.tolist(), wp, wf, n_speakers)
        assert got == want
        assert edge_type.max() < n_relations(n_speakers)
        # sorted by (source, target)
        key = edge_index[0] * 10_000 + edge_index[1]
        assert torch.equal(key, key.sort().values)
        # the same graph from the speakers already flat over the real utterances
        flat = torch.cat([speakers[k, :n] for k, n in enumerate(lengths.tolist())])
        flat_index, flat_type = build_graph(lengths, flat, wp, wf, n_speakers)
        assert torch.equal(flat_index, edge_index) and torch.equal(flat_type, edge_type)


def test_window_edges_counts_and_self_loops():
    lengths = torch.tensor([50] * 32)
    ei = window_edges(lengths, 5, 5)
    # each node: up to 5 back, 5 forward, itself, clipped at both ends
    per_dialogue = sum(min(i, 5) + min(49 - i, 5) + 1 for i in range(50))
    assert ei.shape[1] == 32 * per_dialogue
    loops = ei[0] == ei[1]
    assert int(loops.sum()) == 32 * 50
    assert torch.equal(ei[0] // 50, ei[1] // 50)  # never across dialogues


def test_zero_length_dialogue_and_empty_batch():
    ei = window_edges(torch.tensor([3, 0, 2]), 1, 1)
    want = slow_graph([3, 0, 2], [[0] * 3, [0] * 3, [0] * 3], 1, 1, 1)
    assert set(map(tuple, ei.t().tolist())) == set(want)
    empty = window_edges(torch.zeros(0, dtype=torch.long), 5, 5)
    assert empty.shape == (2, 0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="wp"):
        window_edges(torch.tensor([3]), -2, 1)
    ei = window_edges(torch.tensor([3]), 1, 1)
    with pytest.raises(ValueError, match="speaker ids"):
        relation_types(ei, torch.tensor([0, 2, 1]), 2)
    with pytest.raises(ValueError, match=r"speakers must be \[B, T\] \(padded\) or \[N\]"):
        build_graph(torch.tensor([3]), torch.zeros(1, 3, 1, dtype=torch.long), 1, 1, 2)
