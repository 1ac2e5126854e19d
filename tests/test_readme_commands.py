"""Every ``bridging-*`` command line of the README's ```bash blocks, run as written (issue 12).

The commands run in README order in one workspace (the working directory of every command,
so ``outputs/`` lands there), each as a real process. What a line names but a test machine
lacks is made first, tiny: ``/data/data_iemocap_4.pkl`` (a COGMEN file),
``/data/IEMOCAP_features.pkl`` (a 6-way DialogueRNN file), ``/data/IEMOCAP_full_release`` (a
fake release with wav files), a reference COGMEN checkpoint, a killed run, a conversation of
wav files and a model trained on their eGeMAPS features. Placeholders are replaced
(:data:`PLACEHOLDERS`, ``ckpt_path=...``, a lone ``...``); training gets ``debug=tiny``
appended (tiny data, 2 epochs) and sweeps a tiny grid (:data:`APPENDED`). Lines that cannot
run here are listed in :data:`SKIP` with the reason; a stale entry fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

#: README lines that are not run, with the reason
SKIP = {
    "bridging-reproduce [--quick] [--data FILE] [--seeds 0 1 2] [--epochs N]": (
        "a usage synopsis of the whole comparison (18 runs of 55 epochs: hours); its QUICK "
        "smoke test is tests/test_reproduce.py"
    ),
    "bridging-train -m ... hydra/launcher=submitit_slurm hydra.launcher.partition=gpu": (
        "needs a SLURM cluster"
    ),
    "bridging-reproduce --data /data/MELD_features_raw.pkl": (
        "the whole comparison on MELD (hours); tests/test_reproduce.py runs it on a tiny "
        "MELD-layout file"
    ),
}

#: overrides appended to a line (matched by a substring of it), besides debug=tiny
APPENDED = {
    "sweep=kd_grid": ["recipe.kd.temperature=2", "recipe.kd.alpha=0.5"],  # 1 of 20 points
    "sweep=mask_grid": [  # 1 of 27 points
        "recipe.mask.p_audio_full=0.1",
        "recipe.mask.p_other_full=0.1",
        "recipe.mask.p=0.2",
    ],
    "hparams_search=kd_optuna": ["hydra.sweeper.n_trials=1"],
    "hparams_search=mask_optuna": ["hydra.sweeper.n_trials=1"],
}

#: what each program prints on success (a regex searched in its stdout)
PRINTS = {
    "bridging-train": r"\] .+ trained on .+, evaluated on .+: test weighted F1 \d",
    "bridging-eval": r"evaluated on .+ split: weighted F1 \d+\.\d\d .*-> .+metrics\.json",
    "bridging-predict": r"^wrote \d+ predictions to preds\.csv$",
    "bridging-import-cogmen": r'"out": "teacher\.ckpt"',
    "bridging-report": r"teacher",
    "bridging-data": r"\"format\"|^wrote |^converted ",
    "bridging-predict-audio": r"^wrote \d+ predictions \(batch mode\) to speech_preds\.csv$",
    "bridging-export": r"^exported onnx to model\.onnx .*max \|log_prob difference\|",
}


def readme_commands() -> list[str]:
    """Every line of a ```bash block of the README whose command is a bridging-* program."""
    lines, inside = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and line.strip().startswith("bridging-"):
            lines.append(line.split("  #")[0].strip())
    return lines


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_this_test_runs():
    progs = {shlex.split(c.replace("'s ", "s "))[0] for c in COMMANDS}
    assert progs == set(PRINTS) | {"bridging-reproduce"}
    assert len(COMMANDS) >= 35
    for line in SKIP:
        assert line in COMMANDS, f"stale SKIP entry: {line}"


# ------------------------------------------------------------------------- the workspace
def _reference_checkpoint(path: Path, tmp: Path) -> None:
    """A reference COGMEN checkpoint ({"args", "state_dict"}, saved by the reference code:
    the test stand-in of its package, see tests/test_reference_import.py)."""
    from test_reference_import import FAKE_FILES, make_args

    pkg = tmp / "fake_cogmen"
    for rel, src in FAKE_FILES.items():
        f = pkg / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(src))
    sys.path.insert(0, str(pkg))
    try:
        from cogmen.model.COGMEN import COGMEN as Reference

        args = make_args()
        torch.manual_seed(0)
        ref = Reference(args)
        torch.save({"args": args, "state_dict": ref.state_dict()}, path)
    finally:
        for name in [m for m in sys.modules if m == "cogmen" or m.startswith("cogmen.")]:
            del sys.modules[name]
        sys.path.remove(str(pkg))


class CrashAfter(pl.Callback):
    """Kills a training run (an exception) after ``steps`` optimiser steps."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, *args, **kwargs):
        if trainer.global_step >= self.steps:
            raise RuntimeError("simulated kill")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The working directory and the placeholders' stand-ins."""
    pytest.importorskip("opensmile")
    pytest.importorskip("onnxruntime")
    from bridging.data.formats.cogmen import write_cogmen
    from bridging.data.formats.dialoguernn import write_dialoguernn
    from bridging.data.formats.meld import write_meld
    from bridging.data.synthetic import synthesize
    from bridging.runs.config import compose
    from bridging.runs.experiment import train
    from bridging.speech.iemocap import prepare_iemocap
    from bridging.speech.testing import write_fake_meld_release, write_fake_release

    ws = tmp_path_factory.mktemp("readme")
    data = ws / "data"
    data.mkdir()
    tiny = {
        "n_dialogues": 16,
        "n_test_dialogues": 4,
        "min_len": 4,
        "max_len": 12,
        "mean_len": 8,
        "seed": 0,
    }
    write_cogmen(synthesize(label_set="iemocap_4", **tiny), data / "data_iemocap_4.pkl")
    write_dialoguernn(synthesize(label_set="iemocap_6", **tiny), data / "IEMOCAP_features.pkl")
    meld = synthesize(preset="meld", n_dialogues=24, seed=0, feature_sizes={"a": 8, "t": 12})
    write_meld(meld, data / "MELD_features_raw.pkl")
    written = write_fake_release(data / "IEMOCAP_full_release")
    write_fake_meld_release(data / "MELD")
    _reference_checkpoint(ws / "iemocap_4_best_dev_f1_model_atv.pt", ws)
    # a conversation of wav files and a model trained on their eGeMAPS features
    prepared = ws / "speech" / "prepared"
    prepare_iemocap(data / "IEMOCAP_full_release", prepared, label_set="iemocap_4", progress=False)
    speech_run = ws / "speech" / "run"
    train(
        compose(
            "train",
            [
                f"paths.output_dir={speech_run}",
                *TINY,
                "experiment=audio_only",
                "data=iemocap",
                f"data.path={prepared}",
                "trainer.max_epochs=1",
                "model.gnn_nheads=2",
            ],
        )
    )
    test_utts = [w for w in written if w["session"] == 5]
    (ws / "conversation.csv").write_text(
        "file,speaker\n" + "".join(f"{w['wav']},{w['speaker']}\n" for w in test_utts)
    )
    # a killed run of `bridging-train debug=tiny` (the README's resume line resumes it)
    killed = ws / "killed_run"
    crash = [f"+callbacks.crash._target_={__name__}.CrashAfter", "+callbacks.crash.steps=5"]
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(compose("train", [f"paths.output_dir={killed}", "debug=tiny", *crash]))
    assert (killed / "checkpoints" / "last.ckpt").is_file()
    assert not (killed / "metrics.json").exists()
    return {
        "dir": ws,
        "killed": killed,
        "n_audio": len(test_utts),
        "speech_ckpt": speech_run / "checkpoints" / "best.ckpt",
        "placeholders": {
            "<the killed run's dir>": str(killed),
            "<a finished run's dir>": str(killed),  # finished by the resume line before it
            "/data/": f"{data}/",
        },
    }


def _first_teacher_run(ws: Path) -> str:
    runs = sorted((ws / "outputs" / "teacher" / "runs").iterdir())
    assert runs, "the README's first bridging-train has not run (commands run in order)"
    return runs[0].name


def as_run(line: str, ws: dict) -> list[str]:
    """The README line with its placeholders replaced and the tiny overrides appended."""
    for k, v in ws["placeholders"].items():
        line = line.replace(k, v)
    if "<ts>" in line:
        line = line.replace("<ts>", _first_teacher_run(ws["dir"]))
    argv = shlex.split(line)
    prog = argv[0]
    ckpt = {
        "bridging-predict-audio": ws["speech_ckpt"],
        "bridging-export": ws["speech_ckpt"],
    }.get(prog)
    if ckpt is None and "ckpt_path=..." in argv:
        ckpt = f"outputs/teacher/runs/{_first_teacher_run(ws['dir'])}/checkpoints/best.ckpt"
    if prog in ("bridging-predict-audio", "bridging-export"):  # CKPT is positional
        argv = [ckpt if a == "model.ckpt" else a for a in argv]
    argv = [f"ckpt_path={ckpt}" if a == "ckpt_path=..." else a for a in argv if a != "..."]
    if prog == "bridging-train":
        for key, extra in APPENDED.items():
            if key in line:
                argv += extra
        if "data=meld" in argv:  # a MELD file: debug=tiny would swap in IEMOCAP's tiny data
            argv += ["trainer=smoke", "trainer.max_epochs=1", "model.seqcontext_nlayer=1"]
        elif not any(a.startswith("debug=") for a in argv):
            argv.append("debug=tiny")
    return argv


@pytest.mark.parametrize("line", COMMANDS, ids=[f"{i:02d}" for i in range(len(COMMANDS))])
def test_readme_command(workspace, line):
    if line in SKIP:
        pytest.skip(SKIP[line])
    argv = as_run(line, workspace)
    res = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=workspace["dir"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"},
    )
    assert res.returncode == 0, f"{' '.join(argv)}\n{res.stderr[-3000:]}"
    assert re.search(PRINTS[argv[0]], res.stdout, re.M), res.stdout[-2000:]
    ws = workspace["dir"]
    if argv[0] == "bridging-predict-audio":
        assert len((ws / "speech_preds.csv").read_text().splitlines()) == 1 + workspace["n_audio"]
    if argv[:2] == ["bridging-data", "inspect"]:
        summary = json.loads(res.stdout)
        assert summary["label_set"] in ("iemocap_4", "iemocap_6", "meld_7")
        # --protocol loso: the counts of every fold (docs/protocols.md)
        each = summary["folds"].values() if "folds" in summary else [summary["splits"]]
        assert all(splits["test"] for splits in each)
    if "ckpt_path=last" in argv:  # the killed run, resumed, is finished
        metrics = json.loads((workspace["killed"] / "metrics.json").read_text())
        assert metrics["epochs_run"] == 2
