"""bridging-reproduce (make reproduce): every run of the comparison, then the report."""

from __future__ import annotations

import json

from bridging.reproduce import main

EXPECTED = {
    "teacher": (["a", "v"], ["a", "v"]),
    "audio_only": (["a"], ["a"]),
    "av_eval_speech_only": (["a", "v"], ["a"]),
    "student_kd": (["a"], ["a"]),
    "masked": (["a", "v"], ["a"]),
    "masked_nognn": (["a", "v"], ["a"]),
    "audio_dropout": (["a"], ["a"]),
}


def test_quick_reproduce_one_seed(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["--quick", "--seeds", "5", "--epochs", "1", "--jobs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name, (trained, evaluated) in EXPECTED.items():
        m = json.loads((out / name / "seed5" / "metrics.json").read_text())
        assert m["seed"] == 5
        assert m["modalities"] == trained and m["eval_modalities"] == evaluated
        assert f"| {name} |" in printed
    student = json.loads((out / "student_kd" / "seed5" / "metrics.json").read_text())
    teacher = json.loads((out / "teacher" / "seed5" / "metrics.json").read_text())
    # distilled from its own seed's teacher
    assert abs(student["teacher"]["test"]["wf1"] - teacher["test"]["wf1"]) < 1e-6
    speech = json.loads((out / "av_eval_speech_only" / "seed5" / "metrics.json").read_text())
    assert speech["best_checkpoint"].endswith("best.ckpt")
    assert (out / "report.md").read_text().count("| ") > 10
    nognn = json.loads((out / "masked_nognn" / "seed5" / "metrics.json").read_text())
    assert nognn["hparams"]["model.gnn"] == "none"
    # every run keeps its test predictions (the claims pair them), reference rows run once
    for name in EXPECTED:
        if name != "av_eval_speech_only":
            assert (out / name / "seed5" / "test_predictions.npz").is_file()
    for name in ("logreg_a", "logreg_av"):
        m = json.loads((out / name / "seed5" / "metrics.json").read_text())
        assert m["recipe"] == "logreg" and 0 < m["test"]["wf1"] <= 1
    ceiling = json.loads((out / "annotation_ceiling" / "metrics.json").read_text())
    assert 0.5 < ceiling["test"]["wf1"] < 1
    # the estimate printed at the start, one progress line per job, the claims at the end
    assert "FLOP limit of the runs" in printed
    assert printed.count(" test wF1 ") >= len(EXPECTED) + 3
    assert "## Claims" in printed
    assert "| 2 | the KD student beats the audio-only baseline" in printed
    assert "Smoke test" in printed
    summary = json.loads((out / "reproduce.json").read_text())
    assert summary["epochs"] == 1 and summary["seeds"] == [5] and summary["flop_limit_s"] > 0
    assert (out / "plots").is_dir()


def test_oversubscription_is_refused(capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["--quick", "--jobs", "64", "--threads", "2"])
    assert e.value.code == 2
    assert "oversubscribed" in capsys.readouterr().err
