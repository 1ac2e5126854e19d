"""bridging-predict-audio: speech-only emotion predictions for wav files.

    bridging-predict-audio ckpt_path=PATH input=conversation.csv|DIR output=preds.csv
                           [causal=false] [workers=1] [cache_dir=null] [wp=null] [wf=null]
                           [extractor_path=null] [out_of_range=warn|refuse]

input: a CSV with columns ``file`` (wav path, relative to the CSV's folder), ``speaker``
(M/F or 0/1) and optionally ``dialogue``, one row per utterance in turn order; or a folder
holding such a ``manifest.csv``. The features are extracted with the extractor stored in the
checkpoint (the one its training data was made with), the model runs on audio only (other
modalities zeroed), and output gets one row per utterance: [dialogue,] file, speaker, pred,
prob_<label>.

causal=true: each utterance is predicted from the utterances before it (and itself) only,
as a live session would (see bridging.speech.inference). wp/wf: graph windows (default: the
model's). extractor_path: where the HuBERT/wav2vec2 folder is now, if it moved (its weights
must match the stored hash). workers: parallel feature extraction. cache_dir: keep
per-file features there and reuse them on the next run. out_of_range: a recording whose
features lie far outside the model's training range (an all-silent or near-constant wav:
more than 5% of the features beyond 10 training standard deviations, judged with the
standardisation saved with the extractor) gets a one-line warning naming the file (warn), or
stops the command (refuse).
"""

from __future__ import annotations

import sys
import warnings

KEYS = {
    "ckpt_path": None,
    "input": None,
    "output": None,
    "causal": False,
    "workers": 1,
    "cache_dir": None,
    "wp": None,
    "wf": None,
    "extractor_path": None,
    "progress": None,
    "out_of_range": "warn",
}
REQUIRED = ("ckpt_path", "input", "output")


def _value(text: str):
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "none", "~", ""):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def parse_overrides(argv, keys: dict, required, prog: str, doc: str) -> dict:
    """``key=value`` arguments (Hydra style) into a dict over ``keys``; exits on errors."""
    cfg = dict(keys)
    for arg in argv:
        if arg in ("-h", "--help", "help"):
            print(doc)
            raise SystemExit(0)
        key, sep, value = arg.partition("=")
        key = key.strip().lstrip("+")
        if not sep or key not in keys:
            print(
                f"{prog}: error: unknown argument {arg!r}; expected key=value with key in "
                f"{sorted(keys)}",
                file=sys.stderr,
            )
            raise SystemExit(2)
        cfg[key] = _value(value)
    missing = [k for k in required if cfg.get(k) in (None, "")]
    if missing:
        print(
            f"{prog}: error: missing {', '.join(f'{k}=...' for k in missing)}\n\n{doc}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return cfg


def main(argv=None) -> int:
    from bridging.data.records import DataError

    argv = sys.argv[1:] if argv is None else list(argv)
    cfg = parse_overrides(argv, KEYS, REQUIRED, "bridging-predict-audio", __doc__)
    from bridging.speech.inference import predict_audio

    overrides = {"path": cfg["extractor_path"]} if cfg["extractor_path"] else None
    from bridging.io import OutputError
    from bridging.speech.inference import FeatureRangeWarning

    shown = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, FeatureRangeWarning):  # one line, naming the file
            print(f"bridging-predict-audio: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *args, **kwargs)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", FeatureRangeWarning)
            warnings.showwarning = show
            rows = predict_audio(
                str(cfg["ckpt_path"]),
                str(cfg["input"]),
                str(cfg["output"]),
                causal=bool(cfg["causal"]),
                workers=int(cfg["workers"] or 1),
                cache_dir=cfg["cache_dir"],
                wp=cfg["wp"],
                wf=cfg["wf"],
                extractor_overrides=overrides,
                progress=cfg["progress"],
                out_of_range=str(cfg["out_of_range"]),
            )
    except (DataError, OutputError) as exc:
        print(f"bridging-predict-audio: error: {exc}", file=sys.stderr)
        return 2
    mode = "causal" if cfg["causal"] else "batch"
    print(f"wrote {len(rows)} predictions ({mode} mode) to {cfg['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
