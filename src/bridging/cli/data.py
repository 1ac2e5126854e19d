"""bridging-data: inspect, synthesise and convert IEMOCAP-shaped datasets.

    bridging-data inspect PATH [--format auto] [--label-set iemocap_6]
    bridging-data inspect --synthetic [synthetic options]
    bridging-data synth OUT [--layout native|cogmen|dialoguernn] [synthetic options]
    bridging-data convert IN OUT [--format auto] [--label-set iemocap_4]
"""

from __future__ import annotations

import argparse
import json
import sys

from bridging.data.records import LABEL_SETS, DataError


def _synth_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("synthetic data")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--n-dialogues", type=int, default=151)
    g.add_argument("--n-test-dialogues", type=int, default=31)
    g.add_argument("--min-len", type=int, default=8)
    g.add_argument("--max-len", type=int, default=110)
    g.add_argument("--mean-len", type=float, default=49.0)
    g.add_argument("--sizes", default="a=100,t=768,v=512", help="feature sizes, e.g. a=100,v=512")


def _synthesize(args, label_set: str):
    from bridging.data.synthetic import synthesize

    sizes = {}
    for item in args.sizes.split(","):
        name, _, size = item.partition("=")
        sizes[name.strip()] = int(size)
    return synthesize(
        n_dialogues=args.n_dialogues,
        n_test_dialogues=args.n_test_dialogues,
        min_len=args.min_len,
        max_len=args.max_len,
        mean_len=args.mean_len,
        feature_sizes=sizes,
        label_set=label_set,
        seed=args.seed,
    )


def summarize(corpus) -> dict:
    """JSON-ready summary of a corpus: format, counts per split, sizes, labels, speakers."""
    from bridging.data.datamodule import IEMOCAPDataModule

    dm = IEMOCAPDataModule(
        corpus=corpus, modalities=corpus.modalities, label_set=corpus.label_set
    )
    return dm.summary()


def cmd_inspect(args) -> int:
    if args.synthetic:
        corpus = _synthesize(args, args.label_set or "iemocap_4")
    else:
        if not args.path:
            raise SystemExit("bridging-data inspect: give a PATH or --synthetic")
        from bridging.data.sources import load_corpus

        corpus = load_corpus(args.path, format=args.format, label_set=args.label_set or "iemocap_6")
    print(json.dumps(summarize(corpus), indent=2))
    return 0


def cmd_synth(args) -> int:
    from bridging.data.cogmen_format import write_cogmen
    from bridging.data.dialoguernn_format import write_dialoguernn
    from bridging.data.native import write_native

    if args.layout == "dialoguernn" and args.label_set == "iemocap_4":
        raise SystemExit("the DialogueRNN layout stores 6-way labels: use --label-set iemocap_6")
    corpus = _synthesize(args, args.label_set)
    writer = {"native": write_native, "cogmen": write_cogmen, "dialoguernn": write_dialoguernn}
    writer[args.layout](corpus, args.out)
    n = sum(len(d) for ds in corpus.splits.values() for d in ds)
    print(f"wrote {args.layout} dataset ({corpus.label_set}, {n} utterances) to {args.out}")
    return 0


def cmd_convert(args) -> int:
    from bridging.data.sources import convert

    convert(args.inp, args.out, format=args.format, label_set=args.label_set)
    print(f"converted {args.inp} -> {args.out} (bridging native format, {args.label_set})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridging-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sets = sorted(LABEL_SETS)

    p = sub.add_parser("inspect", help="print a JSON summary of a dataset")
    p.add_argument("path", nargs="?")
    p.add_argument("--format", default="auto", help="auto | cogmen | dialoguernn | native")
    p.add_argument("--label-set", choices=sets, default=None,
                   help="default: iemocap_6 for files (labels as stored), iemocap_4 for --synthetic")
    p.add_argument("--synthetic", action="store_true", help="the built-in synthetic data")
    _synth_args(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("synth", help="write a synthetic IEMOCAP-shaped dataset")
    p.add_argument("out")
    p.add_argument("--layout", choices=["native", "cogmen", "dialoguernn"], default="native")
    p.add_argument("--label-set", choices=sets, default="iemocap_4")
    _synth_args(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("convert", help="convert a COGMEN or DialogueRNN file to bridging's format")
    p.add_argument("inp", metavar="IN")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--format", default="auto")
    p.add_argument("--label-set", choices=sets, default="iemocap_6")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f"bridging-data: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
