"""bridging-reproduce --protocol loso and what the report makes of it: the plan (every
recipe x fold x seed), the hierarchical bootstrap (folds, seeds, test dialogues), the power
of each claim, the model-selection diagnostic, W&B grouping, a quick end-to-end run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import test_report as tr  # the fake runs' helpers (a module: its tests are not collected here)
from bridging.cli.reproduce import main
from bridging.data.predictions import PREDICTIONS_FILE, Predictions, confusion_matrix
from bridging.report import ACTOR_PLOT_FILES, LOSO_PLOT_FILES, build_report
from bridging.report.selection import average_ranks, spearman
from bridging.report.stats import (
    arm_interval,
    hierarchical_arm_interval,
    hierarchical_draws,
    hierarchical_paired_difference,
    paired_difference,
    power,
    replicates_needed,
)
from bridging.runs.reproduce import RECIPES, plan

LABELS = tr.LABELS
#: fold -> test dialogue -> utterances (each fold its own session's dialogues)
FOLD_DIALOGUES = {
    1: {"Ses01_d0": 5, "Ses01_d1": 4, "Ses01_d2": 6},
    2: {"Ses02_d0": 3, "Ses02_d1": 7, "Ses02_d2": 5, "Ses02_d3": 4},
    3: {"Ses03_d0": 6, "Ses03_d1": 5},
}
TOTAL_UTT = 120  # the corpus: the same for every fold (train + dev + test)
#: experiment -> (trained on, evaluated on, share of utterances right): test_report's
ARMS = {e: tr.ARMS[e] for e in ("teacher", "student_kd", "av_eval_speech_only", "audio_only",
                                "masked")}  # fmt: skip


def fold_items(fold):
    """(dialogue ids, utterance indices, gold) of a fold's test utterances."""
    dlg = [d for d, n in FOLD_DIALOGUES[fold].items() for _ in range(n)]
    pos = [u for n in FOLD_DIALOGUES[fold].values() for u in range(n)]
    gold = [(3 * i + u + fold) % 4 for i, n in enumerate(FOLD_DIALOGUES[fold].values())
            for u in range(n)]  # fmt: skip
    return dlg, pos, gold


def fake_pred(experiment, fold, seed):
    """Known predictions: the first share of a per-(fold, seed) ranking right, the others
    the next class; a more accurate experiment's right ones include a less accurate one's."""
    _, _, gold = fold_items(fold)
    rank = np.random.default_rng(1000 + 10 * fold + seed).permutation(len(gold))
    right = rank < round(ARMS[experiment][2] * len(gold))
    return [g if r else (g + 1) % 4 for g, r in zip(gold, right)]


def data_summary(fold):
    n = sum(FOLD_DIALOGUES[fold].values())
    return {
        "format": "synthetic", "path": None, "label_set": "iemocap_4",
        "splits": {"train": {"utterances": TOTAL_UTT - n - 10}, "dev": {"utterances": 10},
                   "test": {"dialogues": len(FOLD_DIALOGUES[fold]), "utterances": n}},
        "protocol": "loso", "fold": fold, "dev_rule": "next_session",
    }  # fmt: skip


def write_loso_comparison(root: Path, folds=(1, 2), seeds=(0, 1), arms=ARMS) -> Path:
    """<root>/<experiment>/fold<k>/seed<s>/ as bridging-reproduce --protocol loso lays them
    out: metrics.json computed here (plain Python) from known predictions, and the file."""
    for exp in arms:
        trained, evaluated, _ = ARMS[exp]
        for k in folds:
            dlg, pos, gold = fold_items(k)
            for s in seeds:
                pred = fake_pred(exp, k, s)
                sc = tr.py_scores(gold, pred, 4)
                run = root / exp / f"fold{k}" / f"seed{s}"
                path = tr.write_run(
                    run, experiment=exp, recipe="teacher" if "teacher" in exp else exp,
                    modalities=trained, eval_modalities=evaluated, seed=s, wf1=sc["wf1"],
                    acc=sc["acc"], mf1=sc["mf1"], hparams={}, data=data_summary(k),
                    dev_wf1=sc["wf1"] + 0.01 * s,
                )  # fmt: skip
                m = json.loads(path.read_text())
                m["test"]["confusion"] = confusion_matrix(gold, pred, 4)[:, :4].tolist()
                path.write_text(json.dumps(m))
                probs = np.full((len(pred), 4), 0.1, dtype=np.float32)
                probs[np.arange(len(pred)), pred] = 0.7
                Predictions.build(dlg, pos, gold, pred, probs, LABELS).save(run / PREDICTIONS_FILE)
    return root


def confusions(exp, folds, seeds):
    """[fold][seed] per-dialogue confusion counts of an experiment's fake predictions."""
    out = []
    for k in folds:
        dlg, pos, gold = fold_items(k)
        out.append([Predictions.build(dlg, pos, gold, fake_pred(exp, k, s),
                                      np.zeros((len(gold), 4)), LABELS).dialogues()[1]
                    for s in seeds])  # fmt: skip
    return out


def slow_hierarchical(arms_preds, folds, n_seeds, n_boot, seed):
    """The hierarchical bootstrap as plain loops over the draws documented in
    hierarchical_draws: arms_preds[arm][f][s] = predictions of fold f's seed s; returns
    [arm][b] = mean over drawn folds of the mean over drawn seeds of the wF1 (points)."""
    f_n = len(folds)
    s_max = max(n_seeds)
    rng = np.random.default_rng(seed)
    fold_idx = rng.integers(0, f_n, size=(n_boot, f_n)) if f_n > 1 else np.zeros((n_boot, 1), int)
    if len(set(n_seeds)) == 1:
        seed_idx = rng.integers(0, s_max, size=(n_boot, f_n, s_max))
    else:
        high = np.asarray(n_seeds)[fold_idx][..., None]
        seed_idx = rng.integers(0, high, size=(n_boot, f_n, s_max))
    n_dlg = [len(FOLD_DIALOGUES[k]) for k in folds]
    high = np.asarray(n_dlg)[fold_idx][..., None, None] * np.ones((1, 1, s_max, 1), int)
    dlg = rng.integers(0, high, size=(n_boot, f_n, s_max, max(n_dlg)))
    out = [[] for _ in arms_preds]
    for b in range(n_boot):
        for a, preds in enumerate(arms_preds):
            fold_means = []
            for i in range(f_n):
                f = int(fold_idx[b, i])
                ids, _, gold_all = fold_items(folds[f])
                names = list(FOLD_DIALOGUES[folds[f]])
                vals = []
                for j in range(n_seeds[f]):
                    s = int(seed_idx[b, i, j])
                    gold, pred = [], []
                    for d in dlg[b, i, j, : n_dlg[f]]:
                        for u, name in enumerate(ids):
                            if name == names[d]:
                                gold.append(gold_all[u])
                                pred.append(preds[f][s][u])
                    vals.append(100 * tr.py_scores(gold, pred, 4)["wf1"])
                fold_means.append(sum(vals) / len(vals))
            out[a].append(sum(fold_means) / len(fold_means))
    return out


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------


def test_plan_loso_every_recipe_fold_and_seed():
    jobs = plan([0, 1], ["data=tiny"], folds=[1, 3])
    by = {j.name: j for j in jobs}
    assert len(jobs) == len(by) == 2 * (2 * (len(RECIPES) + 1) + 3)
    for k in (1, 3):
        for s in (0, 1):
            for name in RECIPES:
                j = by[f"{name}/fold{k}/seed{s}"]
                assert (j.kind, j.fold, j.seed, j.recipe) == ("train", k, s, name)
                assert j.overrides[-2:] == ["data.protocol=loso", f"data.fold={k}"]
                assert f"seed={s}" in j.overrides and f"experiment_name={name}" in j.overrides
            # the student and the speech-only evaluation: the teacher of their fold and seed
            assert by[f"student_kd/fold{k}/seed{s}"].after == f"teacher/fold{k}/seed{s}"
            ev = by[f"av_eval_speech_only/fold{k}/seed{s}"]
            assert (ev.kind, ev.after, ev.fold) == ("eval", f"teacher/fold{k}/seed{s}", k)
        # reference rows once per fold (with the first seed)
        for mods in ("a", "av"):
            j = by[f"logreg_{mods}/fold{k}/seed0"]
            assert j.kind == "logreg" and j.overrides[-1] == f"data.fold={k}"
            assert f"logreg_{mods}/fold{k}/seed1" not in by
        assert by[f"annotation_ceiling/fold{k}"].overrides[-1] == f"data.fold={k}"
    # dependencies come first
    names = [j.name for j in jobs]
    assert all(names.index(j.after) < names.index(j.name) for j in jobs if j.after)
    # the paper protocol: the run dirs and overrides of before
    paper = plan([0, 1], ["data=tiny"])
    assert [j.name for j in paper] == [
        *(f"{n}/seed0" for n in RECIPES), "av_eval_speech_only/seed0",
        *(f"{n}/seed1" for n in RECIPES), "av_eval_speech_only/seed1",
        "logreg_a/seed0", "logreg_av/seed0", "annotation_ceiling",
    ]  # fmt: skip
    assert all(j.fold is None and "data.protocol=loso" not in j.overrides for j in paper)
    assert paper[0].overrides == ["experiment=teacher", "experiment_name=teacher", "seed=0",
                                  "data=tiny"]  # fmt: skip
    assert paper[2].after == "teacher/seed0"


def test_meld_file_and_bad_fold_options_are_refused(tmp_path, capsys):
    from bridging.data.formats.meld import write_meld
    from bridging.data.synthetic import synthesize

    corpus = synthesize(preset="meld", n_dialogues=12, seed=2, feature_sizes={"a": 4, "t": 4})
    data = tmp_path / "MELD_features_raw.pkl"
    write_meld(corpus, data)
    out = tmp_path / "never"
    argv = ["--data", str(data), "--protocol", "loso", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bridging-reproduce: error: {data}: --protocol")
    assert "MELD has no sessions" in err[0] and not out.exists()
    # data without a session some fold needs: one line before any job
    argv = ["--quick", "--protocol", "loso", "--jobs", "1", "--out", str(out),
            "data.synthetic.n_dialogues=4", "data.synthetic.n_test_dialogues=1"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "bridging-reproduce: error: <synthetic>: data.fold=1: session 4 has no dialogue "
        "(sessions present: [1, 2, 3, 5]); loso needs all of Ses01..Ses05 (every fold "
        "trains on three of them)"
    ]
    assert not out.exists()
    for bad in (["--protocol", "paper", "--folds", "1"], ["--protocol", "loso", "--folds", "6"],
                ["--protocol", "loso", "data.fold=2"]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main(["--jobs", "1", *bad])
        assert e.value.code == 2
    assert "--folds" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the hierarchical bootstrap
# ---------------------------------------------------------------------------------------------


Q = [50 * (1 - 0.95), 50 * (1 + 0.95)]  # the percentiles of a 95% interval, as claims computes


def old_bootstrap_draws(n_dialogues, n_boot, seed):
    """bootstrap_draws as it was before folds (a frozen copy)."""
    d = np.asarray(n_dialogues, dtype=np.int64)
    s, d_max = len(d), int(d.max())
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, s, size=(n_boot, s))
    high = d[seed_idx][..., None]
    dlg = rng.integers(0, high, size=(n_boot, s, d_max))
    valid = np.arange(d_max) < high
    slot = np.arange(n_boot * s).reshape(n_boot, s, 1) * d_max
    counts = np.bincount((slot + dlg)[valid], minlength=n_boot * s * d_max)
    return seed_idx, counts.reshape(n_boot, s, d_max)


def old_paired(conf_a, conf_b, n_boot, seed):
    """paired_difference's replicates as they were before folds (a frozen copy)."""
    from bridging.data.predictions import f1_scores

    def wf1(confs, seed_idx, counts):
        b, s = seed_idx.shape
        shape = confs[0].shape[1:]
        total = np.zeros((b, s, int(np.prod(shape))))
        for j, conf in enumerate(confs):
            sel = seed_idx == j
            flat = np.asarray(conf, dtype=np.float64).reshape(len(conf), -1)
            total[sel] = counts[sel][:, : len(conf)] @ flat
        return f1_scores(total.reshape(b, s, *shape))["wf1"]

    seed_idx, counts = old_bootstrap_draws([len(c) for c in conf_a], n_boot, seed)
    reps = 100 * (wf1(conf_a, seed_idx, counts) - wf1(conf_b, seed_idx, counts)).mean(-1)
    lo, hi = np.percentile(reps, Q)
    return float(lo), float(hi), 100 * wf1(conf_a, seed_idx, counts).mean(-1)


def test_hierarchical_bootstrap_with_one_fold_is_the_paper_bootstrap_exactly():
    rng = np.random.default_rng(3)
    sizes = [7, 5, 9]  # dialogues per seed (unequal: the padding is exercised)
    conf_a = [rng.integers(0, 4, size=(d, 4, 5)) for d in sizes]
    conf_b = [rng.integers(0, 4, size=(d, 4, 5)) for d in sizes]
    draws = hierarchical_draws([sizes], 300, 11)
    seed_idx, counts = old_bootstrap_draws(sizes, 300, 11)
    assert np.array_equal(draws.seed_idx[:, 0], seed_idx)
    assert np.array_equal(draws.counts[:, 0], counts)
    lo, hi, reps_a = old_paired(conf_a, conf_b, 300, 11)
    new = hierarchical_paired_difference([conf_a], [conf_b], n_boot=300, seed=11)
    assert new["ci"] == (lo, hi)  # bit for bit
    assert paired_difference(conf_a, conf_b, n_boot=300, seed=11)["ci"] == (lo, hi)
    one = hierarchical_arm_interval([conf_a], n_boot=300, seed=11)
    assert one["ci"] == tuple(float(x) for x in np.percentile(reps_a, Q))
    assert arm_interval(conf_a, n_boot=300, seed=11)["ci"] == one["ci"]
    assert new["mean"] == float(np.mean(new["per_replicate"][0]))


@pytest.mark.parametrize("folds, seeds", [((1, 2, 3), (0, 1)), ((1, 2), (0,))])
def test_hierarchical_bootstrap_matches_slow_reference(folds, seeds):
    a, b = "student_kd", "audio_only"
    res = hierarchical_paired_difference(
        confusions(a, folds, seeds), confusions(b, folds, seeds), n_boot=120, seed=4
    )
    preds = [[[fake_pred(e, k, s) for s in seeds] for k in folds] for e in (a, b)]
    slow = slow_hierarchical(preds, folds, [len(seeds)] * len(folds), 120, 4)
    reps = [x - y for x, y in zip(*slow)]
    assert res["ci"] == pytest.approx(tuple(np.percentile(reps, [2.5, 97.5])), abs=1e-9)
    one = hierarchical_arm_interval(confusions(b, folds, seeds), n_boot=120, seed=4)
    assert one["ci"] == pytest.approx(tuple(np.percentile(slow[1], [2.5, 97.5])), abs=1e-9)
    # the point estimate: mean over folds of the per-fold means over seeds
    per = [[100 * (tr.py_scores(fold_items(k)[2], fake_pred(a, k, s), 4)["wf1"]
                   - tr.py_scores(fold_items(k)[2], fake_pred(b, k, s), 4)["wf1"])
            for s in seeds] for k in folds]  # fmt: skip
    assert sum(res["per_replicate"], []) == pytest.approx(sum(per, []), abs=1e-9)
    assert res["mean"] == pytest.approx(np.mean([np.mean(x) for x in per]), abs=1e-12)


def test_hierarchical_draws_unbalanced_seeds():
    """Folds with different numbers of seeds: each drawn fold draws its own S_f seeds (the
    others' slots unused), each (fold, seed) its own D dialogues; a slow reference agrees."""
    draws = hierarchical_draws([[3, 3], [4], [2, 2, 2]], 500, 9)
    assert draws.fold_idx.shape == (500, 3) and draws.seed_idx.shape == (500, 3, 3)
    n_seeds = np.array([2, 1, 3])[draws.fold_idx]
    assert (draws.seed_valid.sum(-1) == n_seeds).all()
    assert (draws.seed_idx < n_seeds[..., None]).all()
    d = np.array([3, 4, 2])[draws.fold_idx][..., None]
    assert (draws.counts.sum(-1)[draws.seed_valid] == np.broadcast_to(d, (500, 3, 3))[
        draws.seed_valid]).all()  # fmt: skip
    assert set(np.unique(draws.fold_idx)) == {0, 1, 2}
    folds, seeds_per = (1, 2), {1: (0, 1), 2: (0,)}
    conf = {e: [confusions(e, (k,), seeds_per[k])[0] for k in folds]
            for e in ("student_kd", "masked")}  # fmt: skip
    res = hierarchical_paired_difference(conf["student_kd"], conf["masked"], n_boot=100, seed=2)
    preds = [[[fake_pred(e, k, s) for s in seeds_per[k]] for k in folds]
             for e in ("student_kd", "masked")]  # fmt: skip
    slow = slow_hierarchical(preds, folds, [2, 1], 100, 2)
    reps = [x - y for x, y in zip(*slow)]
    assert res["ci"] == pytest.approx(tuple(np.percentile(reps, [2.5, 97.5])), abs=1e-9)


# ---------------------------------------------------------------------------------------------
# power and the model-selection diagnostic
# ---------------------------------------------------------------------------------------------


def test_power_numbers_follow_the_formula():
    assert replicates_needed(12.3, 2.0, 3) == math.ceil(3 * (12.3 / 2.0) ** 2) == 114
    assert replicates_needed(1.0, 4.0, 15) == math.ceil(15 / 16) == 1
    assert replicates_needed(0.0, 0.0, 6) == 1  # a zero-width CI decides already
    assert replicates_needed(2.0, 0.0, 6) is None  # the mean on the boundary: no n would
    p = power("beats", -1.5, -4.0, 2.0, 10, 2.0)
    assert (p["half_width"], p["distance"], p["replicates"]) == (3.0, 1.5, 10)
    assert p["replicates_needed"] == 40
    p = power("comparable", -0.5, -3.0, 2.0, 4, 2.0)  # distance to the margin: 2 - 0.5
    assert (p["half_width"], p["distance"]) == (2.5, 1.5)
    assert p["replicates_needed"] == math.ceil(4 * (2.5 / 1.5) ** 2)
    p = power("comparable", 3.0, 1.0, 5.0, 4, 2.0)  # outside the margin: 3 - 2
    assert p["distance"] == 1.0 and p["replicates_needed"] == 16


def test_spearman_against_a_hand_computation():
    x = [1.0, 2.0, 2.0, 4.0, 5.0]
    y = [2.0, 1.0, 3.0, 5.0, 4.0]
    assert average_ranks(x).tolist() == [1.0, 2.5, 2.5, 4.0, 5.0]
    rx, ry = np.array([1, 2.5, 2.5, 4, 5]), np.array([2, 1, 3, 5, 4.0])
    dx, dy = rx - 3, ry - 3
    hand = (dx * dy).sum() / math.sqrt((dx**2).sum() * (dy**2).sum())  # 7 / sqrt(9.5 * 10)
    assert hand == pytest.approx(7 / math.sqrt(95))
    assert spearman(x, y) == pytest.approx(hand, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1], [2]) is None
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 6, 30).astype(float), rng.integers(0, 6, 30).astype(float)
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_selection_diagnostic_in_the_report(tmp_path):
    from bridging.cli.report import main as report_main

    root = tmp_path / "runs"
    dev = [0.50, 0.61, 0.55, 0.70, 0.40]
    test = [0.52, 0.58, 0.60, 0.66, 0.41]
    for i, (d, t) in enumerate(zip(dev, test)):
        tr.write_run(root / f"r{i}", experiment=f"e{i}", seed=i, wf1=t, dev_wf1=d)
    eval_dir = root / "ev"  # a bridging-eval output: no dev of its own, left out
    eval_dir.mkdir()
    (eval_dir / "metrics.json").write_text(json.dumps({
        "checkpoint": "x.ckpt", "recipe": "teacher", "split": "test",
        "label_set": "iemocap_4", "label_names": LABELS, "test": tr.result(0.9),
    }))  # fmt: skip
    report = build_report([root])
    rho = spearman(dev, test)
    assert report.selection()["rows"] == [{"scope": "all", "fold": None, "n": 5, "spearman": rho}]
    assert f"ρ = {rho:+.2f} (n = 5)" in report.markdown()
    out = tmp_path / "out"
    rc = report_main([str(root), "--csv", str(out / "r.csv"), "--json", str(out / "r.json")])
    assert rc == 0
    (row,) = tr.read_csv(out / "r.selection.csv")
    assert (row["scope"], row["n"]) == ("all", "5")
    assert float(row["spearman"]) == pytest.approx(rho, abs=1e-6)
    js = json.loads((out / "r.json").read_text())
    assert js["selection"]["rows"][0]["spearman"] == pytest.approx(rho)


# ---------------------------------------------------------------------------------------------
# the report over a leave-one-session-out comparison
# ---------------------------------------------------------------------------------------------


def test_report_on_a_fake_loso_comparison(tmp_path, capsys):
    from bridging.cli.report import main as report_main

    folds, seeds = (1, 2), (0, 1)
    root = write_loso_comparison(tmp_path / "repro", folds, seeds)
    report = build_report([root], n_boot=150, boot_seed=3)
    res = report.claims()
    assert res["context"]["protocol"] == "loso" and res["context"]["folds"] == [1, 2]
    assert res["context"]["data"] == f"synthetic ({TOTAL_UTT} utt), loso"
    # tables: folds are data sets of their own, never seeds of one
    runs = {r.data for r in report.runs}
    assert runs == {f"synthetic ({TOTAL_UTT} utt), loso fold {k}" for k in folds}
    teacher = [g for g in report.groups if g.first.experiment == "teacher"]
    assert [(g.first.fold, g.seeds) for g in teacher] == [(1, [0, 1]), (2, [0, 1])]
    assert report.hparam_keys[0] == "data"

    rows = {r["experiment"]: r for r in res["comparison"]}
    for exp in ARMS:
        per_fold = [np.mean([100 * tr.py_scores(fold_items(k)[2], fake_pred(exp, k, s), 4)["wf1"]
                             for s in seeds]) for k in folds]  # fmt: skip
        assert rows[exp]["fold_wf1"] == pytest.approx(per_fold, abs=1e-9)
        assert rows[exp]["wf1_mean"] == pytest.approx(np.mean(per_fold), abs=1e-9)
        assert rows[exp]["folds"] == [1, 1, 2, 2] and rows[exp]["seeds"] == [0, 1, 0, 1]
    claims = {c["number"]: c for c in res["claims"]}
    c2 = claims[2]  # student_kd - audio_only, paired by (fold, seed)
    assert (c2["folds"], c2["seeds"], c2["replicates"]) == ([1, 1, 2, 2], [0, 1, 0, 1], 4)
    preds = [[[fake_pred(e, k, s) for s in seeds] for k in folds]
             for e in ("student_kd", "audio_only")]  # fmt: skip
    slow = slow_hierarchical(preds, folds, [2, 2], 150, 3)
    ci = np.percentile([x - y for x, y in zip(*slow)], [2.5, 97.5])
    assert (c2["ci_low"], c2["ci_high"]) == pytest.approx(tuple(ci), abs=1e-9)
    assert c2["fold_means"] == pytest.approx(
        [np.mean(c2["differences"][:2]), np.mean(c2["differences"][2:])]
    )
    for c in claims.values():
        if c["verdict"] == "skipped":
            continue
        assert c["half_width"] == pytest.approx((c["ci_high"] - c["ci_low"]) / 2)
        d = abs(c["mean"]) if c["margin"] is None else abs(c["margin"] - abs(c["mean"]))
        assert c["replicates_needed"] == replicates_needed(c["half_width"], d, 4)
    assert claims[5]["reason"] == "no paired runs: no runs of masked_nognn"

    md = report.markdown()
    per_fold = md.split("## Test weighted F1 per fold")[1].split("## Claims")[0]
    t = rows["teacher"]
    assert (f"| teacher | a+v | {t['fold_wf1'][0]:.2f} | {t['fold_wf1'][1]:.2f} | "
            f"{t['wf1_mean']:.2f} |") in per_fold  # fmt: skip
    section = md.split("## Claims")[1]
    assert "hierarchical bootstrap: folds resampled with replacement" in section
    assert "| folds 1,2 × seeds 0,1 |" in section
    assert "n needed = ⌈n · (h / d)²⌉" in section
    line = next(x for x in section.splitlines() if x.startswith("| 2 |"))
    assert f"| {c2['half_width']:.2f} | {c2['replicates_needed']} |" in line
    undecided = [c for c in claims.values() if c["verdict"].startswith("undecided")]
    for c in undecided:
        line = next(x for x in section.splitlines() if x.startswith(f"| {c['number']} |"))
        assert "fold × seed replicates would decide it at this spread" in line
    # the selection diagnostic: over all runs and per fold
    sel = report.selection()["rows"]
    assert [(r["scope"], r["fold"], r["n"]) for r in sel] == [
        ("all", None, 20), ("fold", 1, 10), ("fold", 2, 10)
    ]  # fmt: skip
    assert "## Model selection" in md and "| fold 2 | 10 |" in md

    # unpaired: a pair missing at one fold
    (root / "masked" / "fold2" / "seed1" / "metrics.json").unlink()
    c3 = {c["number"]: c for c in build_report([root], n_boot=150).claims()["claims"]}[3]
    assert c3["reason"] == (
        "no paired runs: fold × seed pairs differ (masked 1/0,1/1,2/0; audio_only "
        "folds 1,2 × seeds 0,1)"
    )
    # bridging-report over the dir, alone: the per-fold figure
    rc = report_main([str(root), "--plots", str(tmp_path / "plots"), "--bootstrap", "150"])
    assert rc == 0 and "## Test weighted F1 per fold" in capsys.readouterr().out
    png = tmp_path / "plots" / LOSO_PLOT_FILES["per_fold"]
    assert png.read_bytes()[:8] == tr.PNG_MAGIC


def test_per_fold_figure_titles_fit(tmp_path):
    from bridging.report import make_figures

    root = write_loso_comparison(tmp_path / "repro", (1, 2, 3), (0,))
    figs = make_figures(build_report([root], n_boot=100))
    assert {"per_fold", "comparison", "teacher_vs_student", "audio_vs_masked"} <= set(figs)
    for name, fig in figs.items():
        assert tr.titles_outside(fig) == [], name
    title = figs["comparison"]._suptitle.get_text().replace("\n", " ")
    assert "mean over folds 1,2,3" in title and "hierarchical bootstrap" in title
    pair = figs["teacher_vs_student"]._suptitle.get_text().replace("\n", " ")
    assert "summed over folds 1,2,3 and seeds 0" in pair
    assert [t.get_text() for t in figs["per_fold"].axes[0].get_xticklabels()] == [
        "fold 1", "fold 2", "fold 3"
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the real thing: quick, 2 folds x 1 seed, 1 epoch; W&B offline
# ---------------------------------------------------------------------------------------------


def test_quick_loso_reproduce(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # --jobs 2 on the project's 2-core machines
    out = tmp_path / "repro"
    argv = ["--quick", "--protocol", "loso", "--folds", "2", "1", "--seeds", "0", "--epochs",
            "1", "--jobs", "2", "--no-estimate", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for k in (1, 2):
        teacher = json.loads((out / "teacher" / f"fold{k}" / "seed0" / "metrics.json").read_text())
        assert (teacher["data"]["protocol"], teacher["data"]["fold"]) == ("loso", k)
        assert teacher["data"]["splits"]["test"]["sessions"] == [k]
        student = json.loads((out / "student_kd" / f"fold{k}" / "seed0" / "metrics.json")
                             .read_text())  # fmt: skip
        # distilled from the teacher of its own fold and seed
        assert abs(student["teacher"]["test"]["wf1"] - teacher["test"]["wf1"]) < 1e-6
        speech = json.loads((out / "av_eval_speech_only" / f"fold{k}" / "seed0" / "metrics.json")
                            .read_text())  # fmt: skip
        assert speech["data"]["fold"] == k and speech["eval_modalities"] == ["a"]
        assert str(out / "teacher" / f"fold{k}" / "seed0") in speech["best_checkpoint"]
        for ref in (f"logreg_a/fold{k}/seed0", f"logreg_av/fold{k}/seed0",
                    f"annotation_ceiling/fold{k}"):  # fmt: skip
            assert json.loads((out / ref / "metrics.json").read_text())["data"]["fold"] == k
    assert "jobs (iemocap, loso folds 1,2 x 1 seeds," in printed
    report = (out / "report.md").read_text()
    assert "## Test weighted F1 per fold" in report and "| fold 1 | fold 2 |" in report
    assert "CI by hierarchical bootstrap" in report
    assert "n needed = ⌈n · (h / d)²⌉" in report and "| folds 1,2 × seeds 0 |" in report
    assert "## Model selection" in report
    assert (out / "plots" / LOSO_PLOT_FILES["per_fold"]).is_file()
    # every job's predictions name the speakers: fold k tests the two actors of session k
    actors = report.split("## Test weighted F1 per actor")[1].split("\n## ")[0]
    assert "| Ses01F | Ses01M | Ses02F | Ses02M | worst actor |" in actors
    assert "Left out" not in actors
    rows = [line.split(" | ")[0][2:] for line in actors.splitlines() if line.startswith("| ")]
    assert {"teacher", "student_kd", "av_eval_speech_only", "logreg_a",
            "annotation_ceiling", "utterances"} <= set(rows)  # fmt: skip
    assert "| wF1 % | worst actor wF1 % |" in report
    assert (out / "plots" / ACTOR_PLOT_FILES["per_actor"]).is_file()
    summary = json.loads((out / "reproduce.json").read_text())
    assert (summary["protocol"], summary["folds"]) == ("loso", [1, 2])


def offline_run(path: Path):
    """The run record and the summary (key -> JSON text) of an offline W&B run file: a
    LevelDB-style log (a 7-byte header ``:W&B`` + magic + version, then 32 KiB blocks of
    chunks, each with a 7-byte header: CRC, length, type full 1 / first 2 / middle 3 /
    last 4) of protobuf ``Record`` messages."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, buf, run, summary = 7, b"", None, {}
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + n], pos + 7 + n
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind not in (1, 4):
            continue
        rec = pb.Record()
        rec.ParseFromString(buf)
        what = rec.WhichOneof("record_type")
        if what == "run":
            run = rec.run
        elif what == "summary":
            summary.update(
                {u.key or "/".join(u.nested_key): u.value_json for u in rec.summary.update}
            )
    return run, summary


def test_wandb_groups_the_whole_comparison_offline(tmp_path, monkeypatch):
    """logger=wandb among the overrides: every job of the comparison (training runs, the
    speech-only evaluation, the reference rows) is one offline W&B run in one group, of job
    type its experiment, named <experiment>/fold<k>/seed<s>, final test metrics in its
    summary."""
    from bridging.runs import reproduce as lib

    monkeypatch.setenv("WANDB_MODE", "offline")
    common = lib.common_overrides(
        1, quick=True, extra=["logger=wandb", "logger.wandb.log_checkpoint=false"]
    )
    settings = lib.wandb_settings(common)
    assert settings["group"].startswith("reproduce-")
    wanted = ("teacher/fold3/seed1", "student_kd/fold3/seed1", "av_eval_speech_only/fold3/seed1",
              "logreg_a/fold3/seed1")  # fmt: skip
    jobs = [j for j in lib.track(lib.plan([1], common, folds=[3]), settings) if j.name in wanted]
    assert len(jobs) == 4
    root = tmp_path / "repro"
    lib.run_all(jobs, root, 2, 1, lambda msg: None, settings)
    for name in wanted:
        run_dir = root / name
        rec = json.loads((run_dir / "wandb_run.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert (rec["group"], rec["name"], rec["job_type"], rec["mode"]) == (
            settings["group"], name, name.split("/")[0], "offline"
        )  # fmt: skip
        (offline,) = (run_dir / "wandb").glob(f"offline-run-*-{rec['id']}/run-*.wandb")
        run, summary = offline_run(offline)
        assert (run.run_group, run.job_type, run.display_name) == (
            settings["group"], name.split("/")[0], name
        )  # fmt: skip
        assert json.loads(summary["final/test_wf1"]) == pytest.approx(metrics["test"]["wf1"])
    # the runs are apart: one W&B run id each
    ids = {json.loads((root / n / "wandb_run.json").read_text())["id"] for n in wanted}
    assert len(ids) == len(wanted)
    assert os.environ["WANDB_MODE"] == "offline"
