"""The speaker array of the predictions file and the report's per-actor view: per-actor test
wF1 against a slow reference, the worst-actor column, old files left out with a note, the
figure."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import test_report as tr  # the fake runs' helpers (a module: its tests are not collected here)
from bridging.cli.report import main as report_main
from bridging.data.predictions import (
    PREDICTIONS_FILE,
    Predictions,
    PredictionsError,
    confusion_matrix,
    speaker_keys_for,
)
from bridging.report import ACTOR_PLOT_FILES, build_report

LABELS = tr.LABELS
#: fold (its test session) -> test dialogue -> speaker codes of its utterances (0 M, 1 F)
FOLDS = {
    1: {"Ses01F_impro01": [0, 1, 0, 1, 1], "Ses01M_script02": [1, 1, 0, 0, 0, 1, 0]},
    2: {"Ses02F_impro03": [0, 0, 1, 0], "Ses02M_impro01": [1, 0, 1, 1, 0, 1]},
}
EXPERIMENTS = {"teacher": (("a", "v"), 0.8), "audio_only": (("a",), 0.5)}
SEEDS = (0, 1)


def dialogues(fold):
    return [SimpleNamespace(id=d, speakers=np.asarray(s)) for d, s in FOLDS[fold].items()]


def items(fold):
    """(dialogue ids, utterance indices, gold, speaker keys) of a fold's test utterances; the
    speaker keys written out by hand: the session and the gender, ``Ses01M``."""
    dlg, pos, gold, spk = [], [], [], []
    for i, (d, codes) in enumerate(FOLDS[fold].items()):
        for u, c in enumerate(codes):
            dlg.append(d), pos.append(u), gold.append((2 * i + u + fold) % 4)
            spk.append(d[:5] + "MF"[c])
    return dlg, pos, gold, spk


def fake_pred(exp, fold, seed):
    _, _, gold, _ = items(fold)
    rank = np.random.default_rng(500 + 10 * fold + seed + 7 * len(exp)).permutation(len(gold))
    right = rank < round(EXPERIMENTS[exp][1] * len(gold))
    return [g if r else (g + 1 + fold) % 4 for g, r in zip(gold, right)]


def write_loso_runs(root: Path, speakers=True, old=()) -> Path:
    """<root>/<experiment>/fold<k>/seed<s>/: metrics.json computed here (plain Python) and the
    predictions file, with its speaker array unless ``speakers`` is false or the experiment
    is in ``old`` (a file written before speakers were recorded)."""
    for exp, (mods, _) in EXPERIMENTS.items():
        for k in FOLDS:
            dlg, pos, gold, spk = items(k)
            for s in SEEDS:
                pred = fake_pred(exp, k, s)
                sc = tr.py_scores(gold, pred, 4)
                run = root / exp / f"fold{k}" / f"seed{s}"
                n = len(gold)
                data = {
                    "format": "synthetic", "path": None, "label_set": "iemocap_4",
                    "splits": {"train": {"utterances": 40 - n}, "test": {"utterances": n}},
                    "protocol": "loso", "fold": k, "dev_rule": "next_session",
                }  # fmt: skip
                path = tr.write_run(
                    run, experiment=exp, recipe=exp, modalities=mods, seed=s, wf1=sc["wf1"],
                    acc=sc["acc"], mf1=sc["mf1"], hparams={}, data=data,
                )  # fmt: skip
                m = json.loads(path.read_text())
                m["test"]["confusion"] = confusion_matrix(gold, pred, 4)[:, :4].tolist()
                path.write_text(json.dumps(m))
                probs = np.full((n, 4), 0.1, dtype=np.float32)
                probs[np.arange(n), pred] = 0.7
                with_spk = speakers and exp not in old
                order = np.random.default_rng(s).permutation(n)  # rows in any order
                Predictions.build(
                    np.asarray(dlg)[order], np.asarray(pos)[order], np.asarray(gold)[order],
                    np.asarray(pred)[order], probs[order], LABELS,
                    speaker=np.asarray(spk)[order] if with_spk else None,
                ).save(run / PREDICTIONS_FILE)  # fmt: skip
    return root


def slow_wf1(gold, pred, k=4) -> float:
    """Weighted F1 in points, plain Python: per class 2 TP / (2 TP + FP + FN) (0 without any),
    weighted by gold support."""
    total = len(gold)
    out = 0.0
    for c in range(k):
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
        support = sum(1 for g in gold if g == c)
        if 2 * tp + fp + fn:
            out += support / total * 2 * tp / (2 * tp + fp + fn)
    return 100 * out


def slow_per_actor(exp) -> dict:
    """actor -> (mean over the runs that test it of its wF1, utterances), by loops."""
    scores, sizes = {}, {}
    for k in FOLDS:
        _, _, gold, spk = items(k)
        for s in SEEDS:
            pred = fake_pred(exp, k, s)
            for actor in sorted(set(spk)):
                idx = [i for i, a in enumerate(spk) if a == actor]
                scores.setdefault(actor, []).append(
                    slow_wf1([gold[i] for i in idx], [pred[i] for i in idx])
                )
                sizes[actor] = len(idx)
    return {a: (sum(v) / len(v), sizes[a]) for a, v in scores.items()}


def slow_worst(exp, fold, seed) -> tuple[str, float]:
    _, _, gold, spk = items(fold)
    pred = fake_pred(exp, fold, seed)
    per = {}
    for actor in sorted(set(spk)):
        idx = [i for i, a in enumerate(spk) if a == actor]
        per[actor] = slow_wf1([gold[i] for i in idx], [pred[i] for i in idx])
    actor = min(per, key=lambda a: (per[a], a))
    return actor, per[actor]


# ---------------------------------------------------------------------------------------------
# the speaker array of the predictions file
# ---------------------------------------------------------------------------------------------


def test_speaker_round_trip_order_and_old_files(tmp_path):
    dlg, pos, gold, spk = items(1)
    n = len(gold)
    order = np.random.default_rng(3).permutation(n)
    pred = fake_pred("teacher", 1, 0)
    probs = np.full((n, 4), 0.25, dtype=np.float32)
    args = [np.asarray(x)[order] for x in (dlg, pos, gold, pred)]
    p = Predictions.build(*args, probs, LABELS, speaker=np.asarray(spk)[order])
    # sorted by (dialogue, utterance) with the speakers moved alongside
    assert p.speaker.tolist() == [s for _, _, s in sorted(zip(dlg, pos, spk))]
    q = Predictions.load(p.save(tmp_path / "new.npz"))
    assert q.speaker.dtype.kind == "U" and q.speaker.tolist() == p.speaker.tolist()
    assert q.same_items(p) and q.scores() == p.scores()
    # an old file (no speaker array) loads with speaker None; none is written for it
    old = Predictions.build(*args, probs, LABELS)
    old.save(tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as z:
        assert "speaker" not in z.files
    assert Predictions.load(tmp_path / "old.npz").speaker is None
    # the keys from the split's dialogues, in the rows' order
    keys = speaker_keys_for(p.dialogue_id, p.utterance_index, dialogues(1), ("M", "F"))
    assert keys.tolist() == p.speaker.tolist()
    assert old.with_speakers(dialogues(1), ("M", "F")).speaker.tolist() == p.speaker.tolist()
    meld = [SimpleNamespace(id="dia7", speakers=np.asarray([2, 0]))]
    assert speaker_keys_for(["dia7", "dia7"], [1, 0], meld, ["s0", "s1", "s2"]).tolist() == [
        "dia7/s0",
        "dia7/s2",
    ]
    with pytest.raises(ValueError, match="utterance 5 of dialogue dia7 is not in the split"):
        speaker_keys_for(["dia7"], [5], meld, ["s0"])


@pytest.mark.parametrize("bad", ["integers", "too short", "2-d"])
def test_a_malformed_speaker_array_is_refused(tmp_path, capsys, bad):
    run = write_loso_runs(tmp_path / "runs") / "teacher" / "fold1" / "seed0"
    path = run / PREDICTIONS_FILE
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    n = len(arrays["gold"])
    arrays["speaker"] = {
        "integers": np.arange(n),
        "too short": np.asarray(["Ses01M"] * (n - 1)),
        "2-d": np.asarray([["Ses01M"]] * n),
    }[bad]
    np.savez_compressed(path, **arrays)
    expected = f"{path}: speaker: expected a string array of length {n}"
    with pytest.raises(PredictionsError) as e:
        Predictions.load(path)
    assert str(e.value) == expected
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "r.md")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"bridging-report: error: {expected}"]
    assert not (tmp_path / "r.md").exists()


# ---------------------------------------------------------------------------------------------
# the per-actor view
# ---------------------------------------------------------------------------------------------


def test_per_actor_wf1_matches_a_slow_reference(tmp_path, capsys):
    root = write_loso_runs(tmp_path / "runs")
    report = build_report([root], n_boot=200)
    view = report.actors()
    (table,) = view["tables"]
    actors = ["Ses01F", "Ses01M", "Ses02F", "Ses02M"]
    assert table["actors"] == actors and view["notes"] == [] and view["left_out"] == {}
    rows = {r["experiment"]: r for r in table["rows"]}
    assert set(rows) == set(EXPERIMENTS)
    for exp, row in rows.items():
        ref = slow_per_actor(exp)
        assert set(row["wf1"]) == set(ref)
        for a in actors:
            assert row["wf1"][a] == pytest.approx(ref[a][0], abs=1e-9), (exp, a)
            assert table["n_utterances"][a] == ref[a][1]
        worst = min(actors, key=lambda a: (ref[a][0], a))
        assert (row["worst_actor"], row["worst_wf1"]) == (worst, pytest.approx(ref[worst][0]))
        assert (row["n"], sorted(set(row["folds"]))) == (len(FOLDS) * len(SEEDS), [1, 2])
    # the runs table: the worst actor's wF1 beside wF1, per run
    by_run = {(r.experiment, r.fold, r.seed): row for r, row in zip(report.runs, report.run_rows())}
    for exp in EXPERIMENTS:
        for k in FOLDS:
            for s in SEEDS:
                actor, wf1 = slow_worst(exp, k, s)
                row = by_run[(exp, k, s)]
                assert row["worst_actor"] == actor
                assert row["test_worst_actor_wf1"] == pytest.approx(wf1, abs=1e-9)
    md = report.markdown()
    assert "| wF1 % | worst actor wF1 % | acc % |" in md
    section = md.split("## Test weighted F1 per actor")[1]
    head = "| experiment | evaluated on | runs | Ses01F | Ses01M | Ses02F | Ses02M | worst actor |"
    assert head in section
    t = rows["teacher"]["wf1"]
    assert f"| teacher | a+v | 4 | {' | '.join(f'{t[a]:.2f}' for a in actors)} |" in section
    n = table["n_utterances"]
    assert f"| utterances |  |  | {' | '.join(str(n[a]) for a in actors)} |" in section
    # --json and --csv carry them too
    out = tmp_path / "out"
    rc = report_main([str(root), "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                      "--bootstrap", "200"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    js = json.loads((out / "r.json").read_text())
    assert js["actors"]["tables"][0]["actors"] == actors
    js_rows = {r["experiment"]: r for r in js["actors"]["tables"][0]["rows"]}
    assert js_rows["audio_only"]["wf1"] == pytest.approx(rows["audio_only"]["wf1"])
    assert all(r["worst_actor"] in actors for r in js["runs"])
    csv_rows = tr.read_csv(out / "r.csv")
    assert list(csv_rows[0])[list(csv_rows[0]).index("test_wf1") + 1 :][:2] == [
        "test_worst_actor_wf1",
        "worst_actor",
    ]
    for r in csv_rows:
        assert r["worst_actor"] in actors and float(r["test_worst_actor_wf1"]) >= 0


def test_old_predictions_without_speakers_are_left_out_with_a_note(tmp_path):
    root = write_loso_runs(tmp_path / "runs", old=("audio_only",))
    report = build_report([root], n_boot=200)
    view = report.actors()
    (table,) = view["tables"]
    assert [r["experiment"] for r in table["rows"]] == ["teacher"]
    old_dirs = sorted(str(r.run_dir) for r in report.runs if r.experiment == "audio_only")
    assert sorted(view["left_out"]["no speaker"]) == old_dirs
    (note,) = view["notes"]
    assert note.startswith(
        "Left out of the per-actor table: 4 runs whose test_predictions.npz has no speaker "
        "array (written before speakers were recorded"
    )
    assert all(d in note for d in old_dirs) and "\n" not in note
    md = report.markdown()
    assert f"**{note}**" in md
    for r, row in zip(report.runs, report.run_rows()):
        assert (row["worst_actor"] is None) == (r.experiment == "audio_only")
    runs_table = md.split("## Runs")[1].split("##")[0]
    assert runs_table.count("| n/a |") == 4
    # nothing but old files: the note, no table, no figure, no column
    only_old = build_report([write_loso_runs(tmp_path / "old", speakers=False)], n_boot=200)
    view = only_old.actors()
    assert view["tables"] == [] and len(view["notes"]) == 1
    md = only_old.markdown()
    assert "No run has per-utterance speakers." in md and "worst actor wF1" not in md
    from bridging.report import make_figures

    assert "per_actor" not in make_figures(only_old)
    # runs without any predictions file: no section at all
    bare = tmp_path / "bare"
    tr.write_run(bare / "t0", seed=0)
    assert build_report([bare]).actors() is None
    assert "per actor" not in build_report([bare]).markdown()


def test_the_per_actor_figure_is_written_and_its_title_fits(tmp_path, capsys):
    root = write_loso_runs(tmp_path / "runs")
    plots = tmp_path / "plots"
    rc = report_main([str(root), "--plots", str(plots), "--out", str(tmp_path / "r.md"),
                      "--bootstrap", "200"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    png = plots / ACTOR_PLOT_FILES["per_actor"]
    assert png.read_bytes()[:8] == tr.PNG_MAGIC and png.stat().st_size > 5000
    assert f"wrote per_actor plot {png}" in err
    assert f"![per_actor](plots/{png.name})" in (tmp_path / "r.md").read_text()
    from bridging.report.figures import plot_per_actor

    fig = plot_per_actor(build_report([root], n_boot=200).actors())
    assert tr.titles_outside(fig) == []
    assert plot_per_actor(None) is None
