"""bridging-data: inspect files in both official layouts, synth, convert, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bridging.cli.data import main
from bridging.data.formats.cogmen import write_cogmen
from bridging.data.formats.dialoguernn import write_dialoguernn
from bridging.data.synthetic import synthesize

SMALL = {
    "n_dialogues": 20,
    "n_test_dialogues": 5,
    "min_len": 4,
    "max_len": 14,
    "mean_len": 9,
    "seed": 1,
}


def expected_counts(corpus):
    out = {}
    for name, dialogues in corpus.splits.items():
        labels = np.concatenate([d.labels for d in dialogues])
        out[name] = {
            "dialogues": len(dialogues),
            "utterances": int(labels.size),
            "label_counts": {n: int((labels == i).sum()) for i, n in enumerate(corpus.label_names)},
        }
    return out


def inspect(capsys, *args):
    assert main(["inspect", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("layout", ["cogmen", "dialoguernn"])
def test_inspect_official_layouts(tmp_path, capsys, layout):
    corpus = synthesize(label_set="iemocap_6", **SMALL)
    path = tmp_path / f"{layout}.pkl"
    (write_cogmen if layout == "cogmen" else write_dialoguernn)(corpus, path)
    summary = inspect(capsys, str(path), "--label-set", "iemocap_6")
    assert summary["format"] == layout
    assert summary["splits"] == expected_counts(corpus)
    assert summary["feature_sizes"] == {"a": 100, "t": 768, "v": 512}
    assert summary["speakers"] == ["M", "F"]
    assert summary["label_names"] == ["hap", "sad", "neu", "ang", "exc", "fru"]


def test_inspect_four_way_dialoguernn_drops_other_labels(tmp_path, capsys):
    corpus6 = synthesize(label_set="iemocap_6", **SMALL)
    path = tmp_path / "IEMOCAP_features.pkl"
    write_dialoguernn(corpus6, path)
    s = inspect(capsys, str(path), "--label-set", "iemocap_4")
    corpus4 = synthesize(label_set="iemocap_4", **SMALL)
    total6 = sum(len(d) for ds in corpus6.splits.values() for d in ds)
    total4 = sum(v["utterances"] for v in s["splits"].values())
    kept = sum(
        int(np.isin(d.labels, [0, 1, 2, 3]).sum()) for ds in corpus6.splits.values() for d in ds
    )
    assert total4 == kept < total6
    assert set(s["splits"]["train"]["label_counts"]) == {"hap", "sad", "neu", "ang"}
    assert corpus4.label_set == "iemocap_4"


def test_synth_then_inspect_and_convert(tmp_path, capsys):
    out = tmp_path / "synth_cogmen.pkl"
    assert (
        main(
            [
                "synth",
                str(out),
                "--layout",
                "cogmen",
                "--label-set",
                "iemocap_4",
                "--n-dialogues",
                "20",
                "--n-test-dialogues",
                "5",
                "--min-len",
                "4",
                "--max-len",
                "14",
                "--mean-len",
                "9",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    s = inspect(capsys, str(out))
    assert s["format"] == "cogmen" and s["label_set"] == "iemocap_4"
    assert s["splits"] == expected_counts(synthesize(label_set="iemocap_4", **SMALL))
    native = tmp_path / "native"
    assert main(["convert", str(out), str(native)]) == 0
    capsys.readouterr()
    s2 = inspect(capsys, str(native))
    assert s2["format"] == "native" and s2["splits"] == s["splits"]


def test_inspect_synthetic_default(capsys):
    s = inspect(capsys, "--synthetic", "--n-dialogues", "30")
    assert s["format"] == "synthetic" and s["label_set"] == "iemocap_4"
    assert sum(v["dialogues"] for v in s["splits"].values()) == 30


def test_errors_are_reported_with_the_file(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.pkl")]) == 2
    err = capsys.readouterr().err
    assert "missing.pkl" in err and "no such file" in err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 definitely not a dataset")
    assert main(["inspect", str(junk)]) == 2
    assert "junk.bin" in capsys.readouterr().err


def test_feature_size_options_parse_once_and_refuse_bad_items(tmp_path, capsys):
    from bridging.cli.common import feature_sizes
    from bridging.cli.import_cogmen import main as import_main

    assert feature_sizes("a=100, t=768,v=512") == {"a": 100, "t": 768, "v": 512}
    # --sizes reaches the generator: the synthesised file has those sizes
    out = tmp_path / "sized"
    assert main(["synth", str(out), "--sizes", "a=12,v=7", "--n-dialogues", "12"]) == 0
    capsys.readouterr()
    assert inspect(capsys, str(out))["feature_sizes"] == {"a": 12, "v": 7}
    bad = {
        "a=abc": "'a=abc': the size of 'a' must be a positive integer",
        "a=0": "'a=0': the size of 'a' must be a positive integer",
        "x=10": "'x=10': expected MODALITY=SIZE items joined by commas, e.g. "
        "a=100,t=768,v=512 (modalities a, t, v)",
        "a100": "'a100': expected MODALITY=SIZE",
        "a=1,a=2": "'a' given twice",
    }
    for text, message in bad.items():
        with pytest.raises(SystemExit) as exc:
            main(["synth", str(tmp_path / "never"), "--sizes", text])
        assert exc.value.code == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert err[-1].startswith(f"bridging-data synth: error: argument --sizes: {message}")
        with pytest.raises(SystemExit) as exc:
            import_main(["ref.pt", "out.ckpt", "--feature-sizes", text])
        assert exc.value.code == 2
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith(
            f"bridging-import-cogmen: error: argument --feature-sizes: {message}"
        )
    assert not (tmp_path / "never").exists()
