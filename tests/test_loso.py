"""The split protocols (docs/protocols.md): paper (unchanged) and leave-one-session-out
folds for the synthetic corpus and every IEMOCAP layout; the errors; bridging-data inspect."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bridging.cli.data import main
from bridging.data.datamodule import DatasetFacts, IEMOCAPDataModule
from bridging.data.formats.cogmen import write_cogmen
from bridging.data.formats.dialoguernn import write_dialoguernn
from bridging.data.formats.meld import write_meld
from bridging.data.formats.native import write_native
from bridging.data.protocols import session_of, stored_order
from bridging.data.records import Corpus, DataError
from bridging.data.synthetic import synthesize

SMALL = {
    "n_dialogues": 30,
    "n_test_dialogues": 6,
    "min_len": 3,
    "max_len": 10,
    "mean_len": 6,
    "seed": 2,
}
SMALL_ARGS = ["--n-dialogues", "30", "--n-test-dialogues", "6", "--min-len", "3"]
SMALL_ARGS += ["--max-len", "10", "--mean-len", "6", "--seed", "2"]
FOLDS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def corpus():
    return synthesize(label_set="iemocap_6", **SMALL)


@pytest.fixture(scope="module")
def files(tmp_path_factory, corpus):
    """The small corpus in each IEMOCAP layout (6-way, as DialogueRNN stores it)."""
    root = tmp_path_factory.mktemp("layouts")
    write_cogmen(corpus, root / "cogmen.pkl")
    write_dialoguernn(corpus, root / "dialoguernn.pkl")
    write_native(corpus, root / "native")
    return {
        "cogmen": root / "cogmen.pkl",
        "dialoguernn": root / "dialoguernn.pkl",
        "native": root / "native",
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A bridging dataset prepared from a fake IEMOCAP release (ids like Ses01F_impro01)."""
    pytest.importorskip("opensmile")
    from bridging.speech.iemocap import prepare_iemocap
    from bridging.speech.testing import write_fake_release

    root = tmp_path_factory.mktemp("speech")
    write_fake_release(root / "release")
    prepare_iemocap(root / "release", root / "prepared", label_set="iemocap_4", progress=False)
    return root / "prepared"


def loso(source, fold, modalities=("a",), **kw) -> IEMOCAPDataModule:
    """A DataModule for ``fold`` (``source``: a Corpus or a path), set up."""
    where = {"corpus": source} if isinstance(source, Corpus) else {"path": str(source)}
    kw.setdefault("label_set", getattr(source, "label_set", "iemocap_6"))
    dm = IEMOCAPDataModule(**where, modalities=modalities, protocol="loso", fold=fold, **kw)
    dm.setup()
    return dm


def split_ids(dm) -> dict[str, list[str]]:
    return {name: [d.id for d in ds] for name, ds in dm.corpus.splits.items()}


def actors(dialogues) -> set[tuple[int, int]]:
    """IEMOCAP's actors: (session, speaker) pairs (the synthetic generator's actor
    ``2 (session - 1) + speaker``)."""
    return {(session_of(d.id, "t"), int(s)) for d in dialogues for s in d.speakers}


def check_fold(dm, fold: int, all_ids: list[str]) -> None:
    """Test = session ``fold``, dev = session ``fold % 5 + 1``, train = the other three;
    disjoint, covering, speaker-disjoint."""
    splits = dm.corpus.splits
    sessions = {name: {session_of(d.id, "t") for d in ds} for name, ds in splits.items()}
    dev = fold % 5 + 1
    assert sessions == {"test": {fold}, "dev": {dev}, "train": set(FOLDS) - {fold, dev}}
    ids = split_ids(dm)
    assert sorted(ids["train"] + ids["dev"] + ids["test"]) == sorted(all_ids)
    assert len(set(ids["train"]) | set(ids["dev"]) | set(ids["test"])) == len(all_ids)
    train_actors = actors(splits["train"])
    assert not actors(splits["test"]) & train_actors
    assert not actors(splits["dev"]) & train_actors
    assert not actors(splits["dev"]) & actors(splits["test"])
    # every dialogue of a session is in its split (whole sessions)
    for d in stored_order(dm.corpus):
        assert (session_of(d.id, "t") == fold) == (d.id in ids["test"])


# -- the synthetic corpus ------------------------------------------------------------------------
def test_synthetic_sessions_agree_with_the_paper_split(corpus):
    """The generator's ids carry its sessions: its test split is session 5, its training
    dialogues sessions 1-4, each session with two actors (M and F)."""
    test = {session_of(d.id, "t") for d in corpus.splits["test"]}
    train = {session_of(d.id, "t") for s in ("train", "dev") for d in corpus.splits[s]}
    assert test == {5} and train == {1, 2, 3, 4}
    everyone = stored_order(corpus)
    assert actors(everyone) == {(s, k) for s in FOLDS for k in (0, 1)}


@pytest.mark.parametrize("fold", FOLDS)
def test_synthetic_fold_is_whole_sessions(corpus, fold):
    dm = loso(corpus, fold)
    check_fold(dm, fold, [d.id for d in stored_order(corpus)])
    facts = dm.facts
    assert (facts.protocol, facts.fold, facts.dev_rule) == ("loso", fold, "next_session")
    train_labels = np.concatenate([d.labels for d in dm.corpus.splits["train"]])
    assert facts.class_counts == np.bincount(train_labels, minlength=6).tolist()
    summary = dm.summary()
    assert (summary["protocol"], summary["fold"], summary["dev_rule"]) == (
        "loso",
        fold,
        "next_session",
    )
    assert summary["splits"]["test"]["sessions"] == [fold]
    assert summary["splits"]["dev"]["sessions"] == [fold % 5 + 1]


def test_within_train_dev_is_the_first_tenth_of_the_other_sessions(corpus):
    everyone = stored_order(corpus)
    for fold in FOLDS:
        dm = loso(corpus, fold, dev="within_train")
        rest = [d.id for d in everyone if session_of(d.id, "t") != fold]
        n_dev = int(0.1 * len(rest))
        ids = split_ids(dm)
        assert ids["test"] == [d.id for d in everyone if session_of(d.id, "t") == fold]
        assert ids["dev"] == rest[:n_dev] and ids["train"] == rest[n_dev:]
        assert not actors(dm.corpus.splits["test"]) & actors(dm.corpus.splits["train"])
        assert dm.facts.dev_rule == "within_train"
    # fold 5 with the paper's dev rule is the paper split (stored order = dev, train, test)
    assert ids == {name: [d.id for d in ds] for name, ds in corpus.splits.items()}


def test_paper_protocol_is_unchanged(corpus):
    default = IEMOCAPDataModule(corpus=corpus, label_set="iemocap_6", modalities=["a", "v"])
    paper = IEMOCAPDataModule(
        corpus=corpus, label_set="iemocap_6", modalities=["a", "v"], protocol="paper"
    )
    for dm in (default, paper):
        dm.setup()
        assert split_ids(dm) == {n: [d.id for d in ds] for n, ds in corpus.splits.items()}
        assert (dm.facts.protocol, dm.facts.fold, dm.facts.dev_rule) == ("paper", None, "source")
        assert "sessions" not in dm.summary()["splits"]["test"]
    for name in ("train", "dev", "test"):
        a, b = default.split(name), paper.split(name)
        assert torch.equal(a.features["a"], b.features["a"]) and torch.equal(a.labels, b.labels)


def test_facts_of_older_checkpoints_load(corpus):
    facts = loso(corpus, 2).facts.to_dict()
    assert (facts["protocol"], facts["fold"], facts["dev_rule"]) == ("loso", 2, "next_session")
    old = {k: v for k, v in facts.items() if k not in ("protocol", "fold", "dev_rule")}
    restored = DatasetFacts.from_dict(old)
    assert (restored.protocol, restored.fold, restored.dev_rule) == ("paper", None, "source")
    assert DatasetFacts.from_dict(facts) == DatasetFacts(**facts)


def test_setting_up_again_keeps_the_fold(corpus):
    """add_modalities() sets the DataModule up again on its re-split corpus."""
    for dev in ("next_session", "within_train"):
        dm = loso(corpus, 3, dev=dev)
        before = split_ids(dm)
        assert dm.add_modalities(["a", "t"]) == ["t"]
        assert split_ids(dm) == before


def test_hydra_config_selects_a_fold(compose_cfg):
    from hydra.utils import instantiate

    cfg = compose_cfg(["debug=tiny", "data.protocol=loso", "data.fold=3", "data.dev=auto"])
    assert (cfg.data.protocol, cfg.data.fold, cfg.data.dev) == ("loso", 3, "auto")
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    assert dm.summary()["splits"]["test"]["sessions"] == [3]
    assert compose_cfg(["debug=tiny"]).data.protocol == "paper"


# -- every IEMOCAP layout ------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["cogmen", "dialoguernn", "native"])
def test_file_layouts_give_the_same_folds(corpus, files, layout):
    all_ids = [d.id for d in stored_order(corpus)]
    for fold in FOLDS:
        dm = loso(files[layout], fold)
        check_fold(dm, fold, all_ids)
        assert dm.facts.path == str(files[layout])
    # the stored order is the file's: fold 5 within_train is the paper split
    paper = {n: [d.id for d in ds] for n, ds in corpus.splits.items()}
    assert split_ids(loso(files[layout], 5, dev="within_train")) == paper


def test_prepared_real_speech_folds(prepared):
    dm0 = IEMOCAPDataModule(path=str(prepared), modalities=["a"])
    dm0.setup()
    all_ids = [d.id for d in stored_order(dm0.corpus)]
    assert all(i.startswith("Ses0") and i[6] == "_" for i in all_ids)  # Ses01F_impro01
    for fold in FOLDS:
        check_fold(loso(prepared, fold, label_set="iemocap_4"), fold, all_ids)


# -- errors: one line naming the file and the field ----------------------------------------------
@pytest.mark.parametrize(
    "kw, message",
    [
        ({"protocol": "lopo"}, r"data\.protocol='lopo': expected one of paper, loso"),
        ({"protocol": "loso"}, r"data\.fold=None: expected an int 1\.\.5 \(the test session\)"),
        ({"protocol": "loso", "fold": 6}, r"data\.fold=6: expected an int 1\.\.5"),
        ({"protocol": "loso", "fold": 0}, r"data\.fold=0: expected an int 1\.\.5"),
        ({"protocol": "loso", "fold": "2"}, r"data\.fold='2': expected an int 1\.\.5"),
        ({"protocol": "loso", "fold": True}, r"data\.fold=True: expected an int 1\.\.5"),
        ({"fold": 2}, r"data\.fold=2: a fold applies to data\.protocol=loso only"),
        ({"dev": "within_train"}, r"data\.dev=within_train: applies to data\.protocol=loso"),
        (
            {"protocol": "loso", "fold": 1, "dev": "random"},
            r"data\.dev='random': expected one of auto, next_session, within_train",
        ),
    ],
)
def test_bad_protocol_config(files, kw, message):
    path = str(files["cogmen"])
    with pytest.raises(DataError, match=message) as err:
        IEMOCAPDataModule(path=path, **kw)
    assert str(err.value).startswith(f"{path}: data.") and "\n" not in str(err.value)


def test_bad_protocol_config_through_hydra(compose_cfg):
    from hydra.utils import instantiate

    from bridging.cli.common import describe

    cfg = compose_cfg(["debug=tiny", "data.fold=4"])
    with pytest.raises(Exception) as err:
        instantiate(cfg.data, _convert_="all")
    msg, _, code = describe(err.value)
    assert code == 2
    assert msg.startswith("<synthetic>: data.fold=4: a fold applies to data.protocol=loso only")


def test_data_without_sessions_is_refused(tmp_path, capsys):
    meld = synthesize(preset="meld", n_dialogues=24, seed=0, feature_sizes={"a": 8, "t": 12})
    with pytest.raises(DataError, match=r"^<synthetic>: dialogue id '\d+': expected an IEMOCAP"):
        loso(meld, 1, label_set="meld_7")
    path = tmp_path / "MELD_features_raw.pkl"
    write_meld(meld, path)
    with pytest.raises(DataError) as err:
        loso(path, 1, label_set="meld_7")
    assert str(err.value).startswith(f"{path}: dialogue id ")
    assert "Ses01..Ses05" in str(err.value) and "\n" not in str(err.value)
    assert main(["inspect", str(path), "--protocol", "loso"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"bridging-data: error: {path}: dialogue id ")


def test_a_missing_session_is_named(corpus):
    from dataclasses import replace

    no3 = replace(
        corpus,
        splits={
            n: [d for d in ds if not d.id.startswith("Ses03")] for n, ds in corpus.splits.items()
        },
    )
    with pytest.raises(DataError, match=r"data\.fold=3: session 3 has no dialogue"):
        loso(no3, 3)
    with pytest.raises(DataError, match=r"data\.fold=2: session 3 has no dialogue"):
        loso(no3, 2)  # its dev session
    # a fold that would only train on fewer sessions is refused too, as inspect refuses the
    # file (it counts every fold)
    for fold, dev in ((1, "next_session"), (2, "within_train"), (4, "next_session")):
        with pytest.raises(DataError, match=rf"data\.fold={fold}: session 3 has no dialogue"):
            loso(no3, fold, dev=dev)


# -- bridging-data inspect --protocol loso -------------------------------------------------------
def inspect(capsys, *args) -> dict:
    assert main(["inspect", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_synthetic_loso_counts(capsys):
    out = inspect(capsys, "--synthetic", "--protocol", "loso", *SMALL_ARGS)
    assert (out["format"], out["protocol"], out["dev_rule"]) == (
        "synthetic",
        "loso",
        "next_session",
    )
    corpus = synthesize(label_set="iemocap_4", **SMALL)
    total = sum(len(ds) for ds in corpus.splits.values())
    assert sorted(out["folds"]) == ["1", "2", "3", "4", "5"]
    for fold in FOLDS:
        counts = out["folds"][str(fold)]
        summary = loso(corpus, fold).summary()["splits"]
        for name in ("train", "dev", "test"):
            assert counts[name] == summary[name]  # dialogues, utterances, labels, sessions
        assert counts["test"]["sessions"] == [fold]
        assert sum(counts[n]["dialogues"] for n in counts) == total
    within = inspect(
        capsys, "--synthetic", "--protocol", "loso", "--dev", "within_train", *SMALL_ARGS
    )
    assert within["dev_rule"] == "within_train"
    assert within["folds"]["5"]["test"] == out["folds"]["5"]["test"]
    assert within["folds"]["1"]["dev"]["sessions"] == [2]  # the first tenth: session 2's start


def test_inspect_file_loso_and_paper_dev_refused(files, capsys):
    out = inspect(capsys, str(files["dialoguernn"]), "--protocol", "loso")
    assert out["format"] == "dialoguernn" and out["path"] == str(files["dialoguernn"])
    assert out["folds"]["4"]["dev"]["sessions"] == [5]
    paper = inspect(capsys, str(files["dialoguernn"]))
    assert paper["protocol"] == "paper" and "folds" not in paper
    assert main(["inspect", "--synthetic", "--dev", "within_train", *SMALL_ARGS]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("bridging-data: error: <synthetic>: data.dev=within_train: applies")
