"""bridging-data: inspect, synthesise and convert IEMOCAP- and MELD-shaped datasets.

bridging-data inspect PATH [--format auto] [--label-set iemocap_6|meld_3] [--dev-split auto]
bridging-data inspect --synthetic [synthetic options, e.g. --preset meld]
bridging-data inspect PATH|--synthetic --protocol loso [--dev within_train]   (every fold)
bridging-data synth OUT [--layout native|cogmen|dialoguernn|meld|meld_mmgcn] [--force]
    [synthetic options]
bridging-data convert IN OUT [--format auto] [--label-set iemocap_4] [--force]
    (--force replaces a bridging corpus only; OUT is never IN)
bridging-data prepare-iemocap ROOT OUT [--labels iemocap_4|iemocap_6]
    [--audio-features egemaps|compare|hubert|wav2vec2] [--hubert-path PATH]
    [--hubert-layer N] [--text-model PATH] [--workers N] [--cache-dir DIR]
bridging-data prepare-meld ROOT OUT [--labels meld_7|meld_3] [same feature options]
    [--csv-dir DIR] [--wav-dir DIR] [--skip-missing-wavs]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bridging.cli.common import add_force_option, command_parser, feature_sizes, stdout_closed
from bridging.data.formats.meld import DEV_SPLITS
from bridging.data.protocols import DEV_RULES, PROTOCOLS, Protocol, loso_summary
from bridging.data.records import LABEL_SETS, DataError
from bridging.data.synthetic.iemocap import CALIBRATED_PRESETS


def _synth_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("synthetic data (defaults: the preset's)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--n-dialogues", type=int, default=None, help="default 151 (meld: 1433)")
    g.add_argument(
        "--n-test-dialogues",
        type=int,
        default=None,
        help="default: 31 of 151 (meld: 280 of 1433), scaled to --n-dialogues",
    )
    g.add_argument("--min-len", type=int, default=None, help="default 8 (meld: 1)")
    g.add_argument("--max-len", type=int, default=None, help="default 110 (meld: 33)")
    g.add_argument(
        "--mean-len", type=float, default=None, help="default 49.2 (meld: MELD's length table)"
    )
    g.add_argument(
        "--sizes",
        type=feature_sizes,
        default=None,
        help="feature sizes, e.g. a=100,v=512 (default a=100,t=768,v=512; meld: a=300,t=600)",
    )
    g.add_argument(
        "--preset",
        default="iemocap",
        choices=["iemocap", "iemocap_v1", "independent", "legacy", "meld"],
        help="iemocap: calibrated to IEMOCAP (default); iemocap_v1: the default corpus until "
        "2026-12-07 (docs/synthetic.md); independent: the negative control with no shared "
        "affect; legacy: the first generator; meld: MELD-shaped, multi-party (docs/meld.md)",
    )


def _default_label_set(args) -> str:
    return "meld_7" if getattr(args, "preset", None) == "meld" else "iemocap_4"


def _synthesize(args, label_set: str):
    """The synthetic corpus of the options; a combination the preset refuses (``--preset
    meld --mean-len 4``) is a DataError naming the options."""
    import re

    from bridging.data.synthetic import synthesize

    try:
        return _synthesize_with(synthesize, args, label_set)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        text = re.sub(
            r"\b(n_dialogues|n_test_dialogues|min_len|max_len|mean_len)\b",
            lambda m: "--" + m.group(1).replace("_", "-"),
            str(exc),
        )
        raise DataError(f"--preset {args.preset}: {text}") from None


def _synthesize_with(synthesize, args, label_set: str):
    return synthesize(
        n_dialogues=args.n_dialogues,
        n_test_dialogues=args.n_test_dialogues,
        min_len=args.min_len,
        max_len=args.max_len,
        mean_len=args.mean_len,
        feature_sizes=args.sizes,
        label_set=label_set,
        seed=args.seed,
        preset=args.preset,
    )


def summarize(corpus) -> dict:
    """JSON-ready summary of a corpus: format, counts per split, sizes, labels, speakers."""
    from bridging.data.datamodule import IEMOCAPDataModule

    dm = IEMOCAPDataModule(corpus=corpus, modalities=corpus.modalities, label_set=corpus.label_set)
    return dm.summary()


def cmd_inspect(args) -> int:
    if args.protocol == "paper":  # --dev goes with --protocol loso
        Protocol.from_config("paper", None, args.dev, args.path or "<synthetic>")
    if args.synthetic:
        corpus = _synthesize(args, args.label_set or _default_label_set(args))
    else:
        if not args.path:
            raise SystemExit("bridging-data inspect: give a PATH or --synthetic")
        from bridging.data.formats.sources import load_corpus

        corpus = load_corpus(
            args.path,
            format=args.format,
            label_set=args.label_set,
            dev_split=args.dev_split,
            max_speakers=args.max_speakers,
        )
    loso = args.protocol == "loso"
    print(json.dumps(loso_summary(corpus, args.dev) if loso else summarize(corpus), indent=2))
    return 0


FORCE_HINT = "give --force to replace it"


MELD_LAYOUTS = {"meld": "dialoguernn", "meld_mmgcn": "mmgcn"}


def refuse_non_corpus(out) -> None:
    """Refuse an existing OUT that is not a bridging corpus: --force replaces a corpus
    only, so the refusal says so (never "give --force to replace it")."""
    from bridging.data.formats.native import is_native_corpus
    from bridging.utils.files import OutputError

    if not is_native_corpus(out):
        raise OutputError(
            f"{out}: exists and is not a bridging corpus; refusing to replace it, even with "
            "--force (which replaces a bridging corpus only): remove it or give another OUT"
        )


def cmd_synth(args) -> int:
    from bridging.data.formats.cogmen import write_cogmen
    from bridging.data.formats.dialoguernn import write_dialoguernn
    from bridging.data.formats.meld import write_meld
    from bridging.data.formats.native import write_native
    from bridging.utils.files import check_output_path, refuse_existing

    label_set = args.label_set or _default_label_set(args)
    if args.layout == "dialoguernn" and label_set == "iemocap_4":
        raise SystemExit("the DialogueRNN layout stores 6-way labels: use --label-set iemocap_6")
    meld = args.preset == "meld"
    if (args.layout in MELD_LAYOUTS) != meld and args.layout != "native":
        raise SystemExit(
            f"the {args.layout} layout is for "
            + ("MELD data: use --preset meld" if args.layout in MELD_LAYOUTS else "IEMOCAP data")
            + ("" if args.layout in MELD_LAYOUTS else ": use --layout meld or native")
        )
    if args.layout == "meld_mmgcn" and label_set != "meld_7":
        raise SystemExit("the MMGCN layout stores emotions only: use --label-set meld_7")
    native_dir = args.layout == "native" and not args.out.endswith(".safetensors")
    if native_dir and os.path.isdir(args.out):
        refuse_non_corpus(args.out)
    if not native_dir:
        check_output_path(args.out, "")  # a folder: --force would not replace it either
    refuse_existing(args.out, args.force, FORCE_HINT)  # before the work
    corpus = _synthesize(args, label_set)
    writer = {"native": write_native, "cogmen": write_cogmen, "dialoguernn": write_dialoguernn}
    if args.layout in MELD_LAYOUTS:
        write_meld(corpus, args.out, layout=MELD_LAYOUTS[args.layout], force=args.force)
    else:
        writer[args.layout](corpus, args.out, force=args.force)
    n = sum(len(d) for ds in corpus.splits.values() for d in ds)
    print(f"wrote {args.layout} dataset ({corpus.label_set}, {n} utterances) to {args.out}")
    return 0


def cmd_convert(args) -> int:
    from bridging.data.formats.sources import convert
    from bridging.utils.files import OutputError, refuse_existing, refuse_own_input

    refuse_own_input(args.out, {"the input": args.inp}, "OUT")
    if os.path.isdir(args.out) and Path(args.inp).resolve().is_relative_to(
        Path(args.out).resolve()
    ):  # corpus/meta.json into corpus: the input would go with the folder
        raise OutputError(
            f"{args.out}: holds the input {args.inp}; refusing to write over an input, even "
            "when forced: give another OUT"
        )
    if os.path.lexists(args.out):
        refuse_non_corpus(args.out)
    refuse_existing(args.out, args.force, FORCE_HINT)  # before reading a large input
    convert(args.inp, args.out, format=args.format, label_set=args.label_set, force=args.force)
    print(
        f"converted {args.inp} -> {args.out} (bridging native format, "
        f"{args.label_set or 'labels as stored'})"
    )
    return 0


def _extractor_options(args) -> dict:
    """The audio extractor's options of a prepare-* command (--hubert-path/--hubert-layer)."""
    if args.audio_features in ("hubert", "wav2vec2"):
        if not args.hubert_path:
            raise SystemExit(
                f"bridging-data {args.command}: --audio-features {args.audio_features} needs "
                "--hubert-path (a local model folder; nothing is downloaded)"
            )
        return {"path": args.hubert_path, "layer": args.hubert_layer}
    if args.hubert_path or args.hubert_layer is not None:
        raise SystemExit(
            f"bridging-data {args.command}: --hubert-path/--hubert-layer go with "
            "--audio-features hubert or wav2vec2"
        )
    return {}


def _prepare(args, prepare, **kw) -> int:
    """Run a prepare-* command (``prepare``: prepare_iemocap or prepare_meld); print a line."""
    corpus = prepare(
        args.root,
        args.out,
        label_set=args.labels,
        audio_features=args.audio_features,
        extractor_options=_extractor_options(args),
        text_model=args.text_model,
        workers=args.workers,
        cache_dir=args.cache_dir,
        standardize=not args.no_standardize,
        progress=False if args.no_progress else None,
        **kw,
    )
    counts = {s: (len(v), sum(len(d) for d in v)) for s, v in corpus.splits.items()}
    spec = corpus.extractors["a"]
    print(
        f"wrote {args.out} ({corpus.label_set}, audio {spec['name']} {spec['dim']}-d"
        + (", text" if "t" in corpus.extractors else "")
        + "): "
        + ", ".join(f"{s} {d} dialogues / {u} utterances" for s, (d, u) in counts.items())
    )
    return 0


def cmd_prepare_iemocap(args) -> int:
    from bridging.speech.iemocap import prepare_iemocap

    return _prepare(args, prepare_iemocap, keep_unlabelled=args.keep_unlabelled)


def cmd_prepare_meld(args) -> int:
    from bridging.speech.meld import prepare_meld

    return _prepare(
        args,
        prepare_meld,
        csv_dir=args.csv_dir,
        wav_dir=args.wav_dir,
        skip_missing=args.skip_missing_wavs,
    )


def _parse_sets(items, preset: str):
    """``--set name=value`` items as generator overrides (``strength.a=0.6`` updates one
    modality's strength); a bad name or value is a one-line error."""
    import yaml

    from bridging.data.synthetic import preset_params

    kw: dict = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DataError(f"--set {item}: expected name=value, e.g. audio_speaker_sd=0.3")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise DataError(f"--set {item}: {value!r} is not a number or list") from None
        if name.startswith("strength."):
            kw.setdefault("strength", {})[name.split(".", 1)[1]] = float(parsed)
        else:
            kw[name] = parsed
    try:
        return preset_params(preset).with_overrides(**kw)
    except (TypeError, ValueError) as exc:
        raise DataError(f"--set: {exc}") from None


#: the COGMEN rows `calibrate --cogmen` measures by default: the fitted ones
#: (``bridging.runs.calibrate.FITTED``, not imported here: it loads torch)
COGMEN_SUBSETS = ["a", "v", "av"]


def cmd_calibrate(args) -> int:
    from bridging.data.synthetic import calibration as cal

    params = _parse_sets(args.set, args.preset)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.verbose else None
    cogmen = None
    if args.cogmen:
        from bridging.runs import calibrate as cc

        subsets = (
            list(cal.COGMEN_ABLATION) if args.cogmen_subsets == ["all"] else args.cogmen_subsets
        )
        bad = sorted(set(subsets) - set(cc.SETTINGS))
        if bad:
            raise DataError(
                f"--cogmen-subsets {' '.join(bad)}: expected among {' '.join(cc.SETTINGS)} or all"
            )
        if args.jobs * args.threads > (os.cpu_count() or 1):
            raise DataError(
                f"--jobs {args.jobs} x --threads {args.threads}: more torch threads than the "
                f"{os.cpu_count()} cores (oversubscribed torch processes run several times slower)"
            )
        say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
        run = {
            "out": args.out, "preset": args.preset, "subsets": subsets,
            "seeds": tuple(args.cogmen_seeds), "epochs": args.epochs, "jobs": args.jobs,
            "threads": args.threads, "log": say,
        }  # fmt: skip
        if args.fit:
            params = cc.fit_strengths(params, rounds=args.rounds or 3, **run)
            print(repr(params))
            return 0
        rows = cc.measure(params=params, **run)
        cogmen = [row.as_dict() for row in rows.values()]
    elif args.fit:
        params = cal.fit_annotation(params, rounds=args.rounds or 20, seed=args.seed, log=log)
        if not args.no_probe:
            params = cal.fit_strengths(params, seed=args.seed, log=log)
        print(repr(params))
        return 0
    facts = cal.calibration_facts(
        params,
        seed=args.seed,
        probe=not args.no_probe,
        probe_seeds=tuple(args.probe_seeds),
        checked_by_cogmen=[row["subset"] for row in cogmen or ()],
    )
    command = "bridging-data calibrate" + (" --cogmen" if args.cogmen else "")
    if args.cogmen and args.cogmen_subsets != COGMEN_SUBSETS:
        command += " --cogmen-subsets " + " ".join(args.cogmen_subsets)
    command += f" --markdown {args.markdown}" if args.markdown else ""
    from bridging.runs.precision import cpu_isa

    text = cal.markdown(facts, params, command, cogmen=cogmen, preset=args.preset, isa=cpu_isa())
    if args.markdown:
        from bridging.utils.files import atomic_write_text

        atomic_write_text(args.markdown, text)
    if args.json:
        rows = [
            {
                "statistic": f.name,
                "real": f.real,
                "generated": float(f.measured),
                "band": f.band,
                "within": f.ok,
                "source": f.source,
            }
            for f in facts
        ]
        print(json.dumps({"facts": rows, "cogmen": cogmen} if cogmen else rows, indent=2))
    else:
        print(text)
    outside = [f.name for f in facts if f.ok is False]
    outside += [f"COGMEN {r['subset']}" for r in cogmen or () if r.get("within") is False]
    if outside:
        print(f"bridging-data: warning: outside the band: {outside}", file=sys.stderr)
    return 0


def _prepare_args(p: argparse.ArgumentParser) -> None:
    """The feature options of the prepare-* commands."""
    p.add_argument(
        "--audio-features", default="egemaps", choices=["egemaps", "compare", "hubert", "wav2vec2"]
    )
    p.add_argument(
        "--hubert-path", default=None, help="local HuBERT/wav2vec2 folder (save_pretrained layout)"
    )
    p.add_argument(
        "--hubert-layer",
        type=int,
        default=None,
        help="hidden state to mean-pool (default: the last)",
    )
    p.add_argument(
        "--text-model",
        default=None,
        help="local sentence-transformers folder: adds text features (modality t)",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel extraction workers")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="per-utterance feature cache (default OUT.cache); reruns resume from it",
    )
    p.add_argument(
        "--no-standardize",
        action="store_true",
        help="keep raw features (default: standardise with the training split's "
        "mean and std, saved with the extractor)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("bridging-data", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sets = sorted(LABEL_SETS)

    p = sub.add_parser("inspect", help="print a JSON summary of a dataset")
    p.add_argument("path", nargs="?")
    p.add_argument("--format", default="auto", help="auto | cogmen | dialoguernn | meld | native")
    p.add_argument(
        "--label-set",
        choices=sets,
        default=None,
        help="default: as stored for files (MELD: meld_7), iemocap_4 for --synthetic "
        "(meld_7 with --preset meld)",
    )
    p.add_argument(
        "--dev-split",
        choices=list(DEV_SPLITS),
        default="auto",
        help="MELD files: dev = MELD's dialogue ids 1039..1152 (official) or the first 10%% "
        "of trainVid (first_fraction); auto: official when the ids allow it (docs/meld.md)",
    )
    p.add_argument(
        "--max-speakers",
        type=int,
        default=None,
        help="refuse dialogues with more speakers (default: as stored)",
    )
    p.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="paper",
        help="paper: the splits as stored (default); loso: the counts of every "
        "leave-one-session-out fold 1..5 (docs/protocols.md)",
    )
    p.add_argument(
        "--dev",
        choices=list(DEV_RULES),
        default="auto",
        help="loso's dev split: next_session (auto: session fold %% 5 + 1) or within_train "
        "(the first 10%% of the training dialogues)",
    )
    p.add_argument("--synthetic", action="store_true", help="the built-in synthetic data")
    _synth_args(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("synth", help="write a synthetic IEMOCAP- or MELD-shaped dataset")
    p.add_argument("out")
    p.add_argument(
        "--layout",
        "--format",
        dest="layout",
        choices=["native", "cogmen", "dialoguernn", "meld", "meld_mmgcn"],
        default="native",
        help="meld: MELD's DialogueRNN/DialogueGCN 9-tuple (with --preset meld); meld_mmgcn: "
        "MMGCN's 10-tuple with video (give --sizes a=300,t=600,v=342)",
    )
    p.add_argument(
        "--label-set", choices=sets, default=None, help="default iemocap_4 (meld: meld_7)"
    )
    add_force_option(p, "OUT")
    _synth_args(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "calibrate",
        help="measure the synthetic corpus against facts about IEMOCAP (data statistics and "
        "probe fits only, never distillation or masking outcomes); --fit re-fits the parameters",
    )
    p.add_argument("--preset", default="iemocap", choices=list(CALIBRATED_PRESETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-probe", action="store_true", help="skip the probe fits (seconds)")
    p.add_argument("--probe-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument(
        "--fit",
        action="store_true",
        help="fit the parameters; print them (with --cogmen: the audio and video strengths "
        "by COGMEN's a and v rows)",
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="fitting rounds (default 20; --cogmen 3)"
    )
    p.add_argument(
        "--set",
        nargs="+",
        metavar="NAME=VALUE",
        default=None,
        help="generator parameters to measure instead of the preset's, e.g. "
        "audio_speaker_sd=0.3 strength.a=0.6",
    )
    p.add_argument("--verbose", action="store_true")
    g = p.add_argument_group(
        "COGMEN rows (--cogmen: bridging's own COGMEN trained on the corpus; minutes per run, "
        "resumable; docs/synthetic.md)"
    )
    g.add_argument("--cogmen", action="store_true", help="measure (or read back) the COGMEN rows")
    g.add_argument(
        "--cogmen-subsets",
        nargs="+",
        default=COGMEN_SUBSETS,
        help=f"input modalities of the rows (default {' '.join(COGMEN_SUBSETS)}; all: the seven "
        "of COGMEN's ablation)",
    )
    g.add_argument("--cogmen-seeds", type=int, nargs="+", default=[0, 1, 2])
    g.add_argument(
        "--epochs", type=int, default=55, help="epochs per run (default 55, the paper's)"
    )
    g.add_argument(
        "--out",
        default=os.path.join(os.environ.get("BRIDGING_OUTPUT", "outputs"), "calibrate"),
        help="the runs' folder (default outputs/calibrate); a rerun reads finished runs back",
    )
    cores = os.cpu_count() or 1
    g.add_argument("--jobs", type=int, default=cores, help=f"worker processes (default {cores})")
    g.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("convert", help="convert a COGMEN or DialogueRNN file to bridging's format")
    p.add_argument("inp", metavar="IN")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--format", default="auto")
    p.add_argument("--label-set", choices=sets, default=None, help="default: as stored")
    add_force_option(p, "bridging corpus at OUT")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "prepare-iemocap",
        help="read the raw IEMOCAP release (transcripts, evaluations, wavs) and write a "
        "bridging dataset with features extracted from the wav files",
    )
    p.add_argument("root", metavar="ROOT", help="the release folder holding Session1..Session5")
    p.add_argument("out", metavar="OUT", help="output folder (bridging native format)")
    p.add_argument("--labels", choices=sets, default="iemocap_4")
    _prepare_args(p)
    p.add_argument(
        "--keep-unlabelled",
        action="store_true",
        help="keep utterances outside the label set as context (label -100)",
    )
    p.set_defaults(func=cmd_prepare_iemocap)

    p = sub.add_parser(
        "prepare-meld",
        help="read MELD's annotation CSVs and the wav files converted from its clips "
        "(docs/meld.md, section 8) and write a bridging dataset with features extracted "
        "from the wav files",
    )
    p.add_argument(
        "root",
        metavar="ROOT",
        help="folder holding train/dev/test_sent_emo.csv and wav/<split>/diaX_uttY.wav",
    )
    p.add_argument("out", metavar="OUT", help="output folder (bridging native format)")
    p.add_argument(
        "--labels",
        choices=["meld_7", "meld_3"],
        default="meld_7",
        help="meld_7 emotions (default) or meld_3 sentiments; the other is kept too",
    )
    _prepare_args(p)
    p.add_argument("--csv-dir", default=None, help="folder of the three CSVs (default ROOT)")
    p.add_argument(
        "--wav-dir", default=None, help="folder of train/, dev/, test/ wavs (default ROOT/wav)"
    )
    p.add_argument(
        "--skip-missing-wavs",
        action="store_true",
        help="drop an utterance whose wav is missing, with a warning (default: an error), "
        "e.g. MELD's dev dia110_utt7",
    )
    p.set_defaults(func=cmd_prepare_meld)
    return parser


def main(argv=None) -> int:
    from bridging.utils.files import OutputError

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return stdout_closed("bridging-data")
    except (DataError, OutputError) as exc:
        print(f"bridging-data: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
