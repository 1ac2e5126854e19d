"""The shared DataModule: batches, padding, facts, modality selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.data.records import IGNORE_INDEX, Corpus, DataError, Dialogue
from bridging.data.synthetic import synthesize

TINY = {
    "n_dialogues": 20,
    "n_test_dialogues": 5,
    "min_len": 3,
    "max_len": 15,
    "mean_len": 8,
    "seed": 3,
}


@pytest.fixture(scope="module")
def corpus():
    return synthesize(label_set="iemocap_4", **TINY)


def dm_for(corpus, modalities=("a", "v"), batch_size=4, **kw):
    dm = IEMOCAPDataModule(
        corpus=corpus,
        modalities=modalities,
        label_set=corpus.label_set,
        batch_size=batch_size,
        **kw,
    )
    dm.setup()
    return dm


def test_batches_match_the_dialogues(corpus):
    dm = dm_for(corpus, shuffle=False)
    dialogues = corpus.splits["train"]
    seen = 0
    for batch in dm.train_dataloader():
        assert set(batch.features) == {"a", "v"}
        b, t = batch.speakers.shape
        assert t == int(batch.lengths.max())
        for k, did in enumerate(batch.dialogue_ids):
            d = dialogues[seen + k]
            assert did == d.id
            n = len(d)
            assert int(batch.lengths[k]) == n
            for m in ("a", "v"):
                np.testing.assert_array_equal(batch.features[m][k, :n].numpy(), d.features[m])
                assert torch.all(batch.features[m][k, n:] == 0)
            assert batch.speakers[k, :n].tolist() == d.speakers.tolist()
            assert batch.labels[k, :n].tolist() == d.labels.tolist()
            assert torch.all(batch.labels[k, n:] == IGNORE_INDEX)
        flat = np.concatenate([dialogues[seen + k].labels for k in range(b)])
        assert batch.flat_labels.tolist() == flat.tolist()
        assert batch.mask.sum() == batch.lengths.sum()
        seen += b
    assert seen == len(dialogues)


def test_shuffled_epoch_covers_every_dialogue_once(corpus):
    dm = dm_for(corpus, batch_size=3)
    torch.manual_seed(0)
    ids = [i for batch in dm.train_dataloader() for i in batch.dialogue_ids]
    assert sorted(ids) == sorted(d.id for d in corpus.splits["train"])
    assert ids != [d.id for d in corpus.splits["train"]]


def test_facts_come_from_the_data(corpus):
    dm = dm_for(corpus, modalities=["v", "a"])
    f = dm.facts
    assert f.modalities == ["a", "v"]  # canonical order
    assert f.feature_sizes == {m: corpus.splits["train"][0].features[m].shape[1] for m in "av"}
    assert f.label_names == ["hap", "sad", "neu", "ang"] and f.n_classes == 4
    labels = np.concatenate([d.labels for d in corpus.splits["train"]])
    expected = [int((labels == c).sum()) for c in range(4)]
    assert f.class_counts == expected
    assert f.input_size(["a", "v"]) == f.feature_sizes["a"] + f.feature_sizes["v"]
    with pytest.raises(DataError, match=r"modality \['t'\] asked for"):
        f.input_size(["a", "t"])


def test_modalities_are_chosen_by_name(corpus):
    dm = dm_for(corpus, modalities=["a"])
    batch = next(iter(dm.val_dataloader()))
    assert list(batch.features) == ["a"]
    with pytest.raises(DataError, match="unknown modality"):
        IEMOCAPDataModule(corpus=corpus, modalities=["audio"])


def test_summary_counts(corpus):
    s = dm_for(corpus).summary()
    for name, dialogues in corpus.splits.items():
        assert s["splits"][name]["dialogues"] == len(dialogues)
        assert s["splits"][name]["utterances"] == sum(len(d) for d in dialogues)
        labels = np.concatenate([d.labels for d in dialogues])
        assert s["splits"][name]["label_counts"]["ang"] == int((labels == 3).sum())


def test_unknown_labels_are_ignored_in_the_flat_labels():
    rng = np.random.default_rng(0)

    def dlg(i, labels):
        n = len(labels)
        return Dialogue(
            id=f"d{i}",
            speakers=np.arange(n) % 2,
            labels=np.array(labels),
            features={"a": rng.normal(size=(n, 3)).astype(np.float32)},
        )

    corpus = Corpus(
        splits={
            "train": [dlg(0, [0, 1, 2]), dlg(1, [3, IGNORE_INDEX])],
            "dev": [dlg(2, [1])],
            "test": [dlg(3, [0, 0])],
        },
        label_names=("hap", "sad", "neu", "ang"),
        label_set="iemocap_4",
        source_format="test",
    )
    dm = dm_for(corpus, modalities=["a"], shuffle=False)
    batch = next(iter(dm.train_dataloader()))
    assert batch.flat_labels.tolist() == [0, 1, 2, 3, IGNORE_INDEX]
    assert dm.facts.class_counts == [1, 1, 1, 1]
