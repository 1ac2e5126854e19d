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
