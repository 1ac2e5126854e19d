"""Audio feature extractors: pluggable, described by a JSON spec saved with data and models.

An extractor turns one utterance's waveform into one feature vector. It is created by name
from a registry (:func:`create_extractor`) and described by a JSON-able **spec**::

    {"name": "egemaps", "version": 1, "params": {...}, "dim": 88, "sample_rate": 16000,
     "library": {"opensmile": "2.6.0"}, "check": {...}, "projection": null | {...}}

The spec is stored in the dataset (``Corpus.extractors["a"]``, meta.json of the native
format) and so in every model trained on it (``DatasetFacts.extractors``, inside the
checkpoint's hyper-parameters); :func:`pipeline_from_spec` re-creates exactly the same
extraction at inference. ``projection`` is a fitted, saved transform applied after the raw
extractor (``standardize``: per-feature mean and std of the training split); never a random
one. ``check`` holds what identifies the extractor's internals (a hash of the openSMILE
feature names, a hash of the encoder's weights) and is verified when the spec is loaded.

Extractors registered here:

- ``egemaps``: openSMILE eGeMAPSv02 functionals (88-d), via the ``opensmile`` package;
- ``compare``: openSMILE ComParE_2016 functionals (6373-d);
- ``hubert`` / ``wav2vec2``: a self-supervised encoder (transformers) loaded from a local
  folder only (``local_files_only``), frame outputs of one layer mean-pooled over time.

Register more with :func:`register`.

:func:`extract_files` runs an extractor over many files: parallel (processes for openSMILE,
threads for torch encoders), with a tqdm progress bar and an optional cache folder of
per-utterance raw features (``<cache>/<spec key>/<utterance key>.npy``) so that an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bridging.data.records import DataError
from bridging.speech.audio import AudioError, load_audio, resample

SPEC_VERSION = 1

#: name -> extractor class
EXTRACTORS: dict[str, type[Extractor]] = {}


class ExtractorError(DataError):
    """A feature extractor that cannot be created or does not match its saved spec."""


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make an :class:`Extractor` subclass available under ``name``."""

    def deco(cls):
        if name in EXTRACTORS and EXTRACTORS[name] is not cls:
            raise ValueError(f"extractor {name!r} is already registered")
        EXTRACTORS[name] = cls
        cls.registered_name = name
        return cls

    return deco


def _sha1(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


class Extractor:
    """Waveform (mono float32 at ``sample_rate``) -> raw feature vector float32 [dim].

    Subclasses set ``registered_name`` (via :func:`register`), implement ``extract`` and
    fill ``params`` (JSON-able: everything that defines the extraction), ``dim``,
    ``sample_rate``, ``library`` (versions) and ``check`` (verified on reload).
    ``parallel``: ``"process"`` (one extractor per worker process) or ``"thread"`` (one
    shared extractor, e.g. a torch model).
    """

    registered_name = "base"
    parallel = "process"
    #: recordings shorter than this (seconds) are an AudioError
    min_seconds = 0.0

    def __init__(self):
        self.params: dict = {}
        self.dim = 0
        self.sample_rate = 16000
        self.library: dict = {}
        self.check: dict = {}

    def extract(self, signal: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> dict:
        return {
            "name": self.registered_name,
            "version": SPEC_VERSION,
            "params": copy.deepcopy(self.params),
            "dim": int(self.dim),
            "sample_rate": int(self.sample_rate),
            "library": dict(self.library),
            "check": dict(self.check),
            "projection": None,
        }

    def features_of(self, path) -> np.ndarray:
        """Raw features of one audio file (resampled to ``sample_rate``), checked finite."""
        x = load_audio(path, self.sample_rate, self.min_seconds)
        return self._checked(self.extract(x), len(x), os.fspath(path))

    def features_of_signal(
        self, signal: np.ndarray, sample_rate: int, where: str = "<signal>"
    ) -> np.ndarray:
        """Raw features of a waveform given in memory (mono; resampled if needed)."""
        x = np.asarray(signal, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1 if x.shape[1] <= 8 else 0)
        if x.ndim != 1 or x.size == 0:
            raise AudioError(f"{where}: expected a non-empty mono waveform, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise AudioError(f"{where}: audio holds NaN or infinite samples")
        if int(sample_rate) != self.sample_rate:
            x = resample(x, int(sample_rate), self.sample_rate)
        if len(x) < self.min_seconds * self.sample_rate:
            raise AudioError(
                f"{where}: {len(x) / self.sample_rate:.3f} s of audio, shorter than the "
                f"{self.min_seconds:.3f} s the feature extractor needs"
            )
        return self._checked(self.extract(x), len(x), where)

    def _checked(self, f, n_samples: int, where: str) -> np.ndarray:
        f = np.asarray(f, dtype=np.float32).reshape(-1)
        if f.shape != (self.dim,):
            raise ExtractorError(
                f"{where}: extractor {self.registered_name} gave {f.shape[0]} features, "
                f"expected {self.dim}"
            )
        if not np.isfinite(f).all():
            raise AudioError(
                f"{where}: extractor {self.registered_name} gave non-finite features "
                f"({n_samples / self.sample_rate:.3f} s of audio: too short or silent?)"
            )
        return f


# -- openSMILE ------------------------------------------------------------------------------
class OpenSmileExtractor(Extractor):
    """openSMILE functionals of the whole utterance (one vector per file)."""

    feature_set = "eGeMAPSv02"
    feature_level = "Functionals"
    min_seconds = 0.1

    def __init__(self, sample_rate: int = 16000, **unknown):
        super().__init__()
        if unknown:
            raise ExtractorError(
                f"extractor {self.registered_name}: unknown options {sorted(unknown)} "
                "(known: sample_rate)"
            )
        try:
            import opensmile
        except ImportError as exc:
            raise ExtractorError(
                f"extractor {self.registered_name} needs the opensmile package: "
                "pip install 'bridging[speech]'"
            ) from exc
        self.smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, self.feature_set),
            feature_level=getattr(opensmile.FeatureLevel, self.feature_level),
        )
        self.sample_rate = int(sample_rate)
        self.params = {
            "feature_set": self.feature_set,
            "feature_level": self.feature_level,
            "sample_rate": self.sample_rate,
        }
        names = list(self.smile.feature_names)
        self.dim = len(names)
        self.library = {"opensmile": opensmile.__version__}
        self.check = {"feature_names_sha1": _sha1(names)}

    def extract(self, signal: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "segment too short": NaNs, caught by the caller
            out = self.smile.process_signal(signal, self.sample_rate)
        return out.to_numpy(dtype=np.float32)[0]


@register("egemaps")
class EGeMAPSExtractor(OpenSmileExtractor):
    """eGeMAPSv02 functionals: 88 features (Eyben et al. 2016)."""

    feature_set = "eGeMAPSv02"


@register("compare")
class ComParEExtractor(OpenSmileExtractor):
    """ComParE_2016 functionals: 6373 features."""

    feature_set = "ComParE_2016"


# -- self-supervised encoders ---------------------------------------------------------------
def weights_fingerprint(folder: Path) -> str:
    """sha256 over the config and weight files of a transformers model folder."""
    from bridging.utils.files import check_input_file

    h = hashlib.sha256()
    for p in folder.iterdir():  # a FIFO among the model's files would hang its loader
        check_input_file(p, "model file")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    )
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise ExtractorError(f"{folder}: no model weights (*.safetensors or *.bin) found")
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


class SSLExtractor(Extractor):
    """A self-supervised speech encoder from a local folder, one layer mean-pooled over time.

    ``path``: a folder saved with ``save_pretrained`` (config.json + weights; optional
    preprocessor_config.json for ``do_normalize`` and ``sampling_rate``); never downloaded.
    ``layer``: index into the hidden states (0 = the input of the first transformer layer,
    ``num_hidden_layers`` = the last), ``None`` = the last hidden state.
    """

    parallel = "thread"
    model_type = "hubert"
    min_seconds = 0.05

    def __init__(self, path=None, layer: int | None = None, pooling: str = "mean", **unknown):
        super().__init__()
        if unknown:
            raise ExtractorError(
                f"extractor {self.registered_name}: unknown options {sorted(unknown)} "
                "(known: path, layer, pooling)"
            )
        if not path:
            raise ExtractorError(
                f"extractor {self.registered_name} needs the path of a local model folder "
                "(e.g. --hubert-path /models/hubert-base-ls960)"
            )
        if pooling != "mean":
            raise ExtractorError(f"pooling {pooling!r}: only 'mean' is supported")
        folder = Path(path).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise ExtractorError(f"{folder}: not a transformers model folder (no config.json)")
        try:
            import torch
            from transformers import AutoConfig, AutoModel
        except ImportError as exc:
            raise ExtractorError(
                f"extractor {self.registered_name} needs transformers: "
                "pip install 'bridging[speech]'"
            ) from exc
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        if config.model_type != self.model_type:
            raise ExtractorError(
                f"{folder}: a {config.model_type!r} model, extractor {self.registered_name} "
                f"expects {self.model_type!r}"
            )
        n_layers = int(config.num_hidden_layers)
        if layer is not None and not 0 <= int(layer) <= n_layers:
            raise ExtractorError(
                f"{folder}: layer {layer} asked for; the model has hidden states 0..{n_layers}"
            )
        self.torch = torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        pre = folder / "preprocessor_config.json"
        pre_cfg = json.loads(pre.read_text()) if pre.is_file() else {}
        self.normalize = bool(pre_cfg.get("do_normalize", False))
        self.sample_rate = int(pre_cfg.get("sampling_rate", 16000))
        self.layer = None if layer is None else int(layer)
        self.folder = folder
        self.params = {
            "path": os.fspath(folder),
            "layer": self.layer,
            "pooling": pooling,
            "normalize": self.normalize,
        }
        self.dim = int(config.hidden_size)
        import transformers

        self.library = {"transformers": transformers.__version__, "torch": torch.__version__}
        self.check = {"weights_sha256": weights_fingerprint(folder)}

    def extract(self, signal: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.asarray(signal, dtype=np.float32))[None]
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        with torch.inference_mode():
            out = self.model(x, output_hidden_states=self.layer is not None)
            h = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
            return h[0].mean(0).numpy()


@register("hubert")
class HubertExtractor(SSLExtractor):
    model_type = "hubert"


@register("wav2vec2")
class Wav2Vec2Extractor(SSLExtractor):
    model_type = "wav2vec2"


# -- creation from names and specs ----------------------------------------------------------
def create_extractor(name: str, **params) -> Extractor:
    """A new extractor by registry name (``egemaps``, ``compare``, ``hubert``, ...)."""
    if name not in EXTRACTORS:
        raise ExtractorError(f"unknown audio extractor {name!r}: known {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](**params)


class FeaturePipeline:
    """An extractor plus its saved projection: what turns a wav into a model input row.

    ``raw_features`` run the extractor only (what the cache stores); ``project`` applies the
    projection; ``features`` does both. ``spec`` is the JSON saved with data and models.
    """

    def __init__(self, extractor: Extractor, projection: dict | None = None):
        self.extractor = extractor
        self.projection = None
        self._mean = self._std = None
        if projection is not None:
            self.set_projection(projection)

    @property
    def dim(self) -> int:
        return self.extractor.dim

    @property
    def sample_rate(self) -> int:
        return self.extractor.sample_rate

    @property
    def spec(self) -> dict:
        spec = self.extractor.spec()
        spec["projection"] = copy.deepcopy(self.projection)
        return spec

    def set_projection(self, projection: dict | None) -> None:
        if projection is None:
            self.projection = None
            self._mean = self._std = None
            return
        kind = projection.get("kind")
        if kind != "standardize":
            raise ExtractorError(f"unknown feature projection {kind!r}: known ['standardize']")
        mean = np.asarray(projection["mean"], dtype=np.float32)
        std = np.asarray(projection["std"], dtype=np.float32)
        if mean.shape != (self.dim,) or std.shape != (self.dim,) or (std <= 0).any():
            raise ExtractorError(
                f"projection 'standardize' needs {self.dim} means and {self.dim} positive stds, "
                f"got {mean.shape[0]} and {std.shape[0]}"
            )
        self.projection = {
            "kind": "standardize",
            "fitted_on": projection.get("fitted_on"),
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        }
        self._mean, self._std = mean, std

    def fit_standardize(self, raw: np.ndarray, fitted_on: str = "train") -> None:
        """Fit the standardisation on raw features [N, dim] (the training split's)."""
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim != 2 or raw.shape[1] != self.dim or raw.shape[0] < 1:
            raise ValueError(f"expected raw features [N>=1, {self.dim}], got {raw.shape}")
        mean = raw.mean(0, dtype=np.float64).astype(np.float32)
        std = raw.std(0, dtype=np.float64).astype(np.float32)
        std = np.where(std > 1e-6 * np.maximum(1.0, np.abs(mean)), std, np.float32(1.0))
        self.set_projection(
            {"kind": "standardize", "fitted_on": fitted_on, "mean": mean, "std": std}
        )

    def project(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float32)
        if self._mean is None:
            return raw
        return ((raw - self._mean) / self._std).astype(np.float32)

    def features_of(self, path) -> np.ndarray:
        """Model-input features [dim] of one audio file."""
        return self.project(self.extractor.features_of(path))

    def features_of_signal(self, signal, sample_rate: int, where: str = "<signal>"):
        """Model-input features [dim] of a waveform in memory."""
        return self.project(self.extractor.features_of_signal(signal, sample_rate, where))

    def raw_features(self, paths, **kw) -> np.ndarray:
        return extract_files(self, paths, **kw)

    def features(self, paths, **kw) -> np.ndarray:
        return self.project(self.raw_features(paths, **kw))


def check_spec(spec) -> dict:
    """Validate the shape of a saved spec; return it."""
    if not isinstance(spec, dict) or "name" not in spec or "params" not in spec:
        raise ExtractorError(
            f"not an extractor spec (expected a dict with 'name' and 'params'): {spec!r:.200}"
        )
    if spec.get("version") != SPEC_VERSION:
        raise ExtractorError(
            f"extractor spec version {spec.get('version')!r}; this bridging reads {SPEC_VERSION}"
        )
    return spec


def pipeline_from_spec(spec: dict, overrides: dict | None = None) -> FeaturePipeline:
    """Re-create the saved extraction. ``overrides`` replace params (e.g. ``{"path": ...}``
    when the encoder folder moved); the ``check`` values must still match, so a different
    model or openSMILE configuration is refused instead of silently giving other features."""
    spec = check_spec(spec)
    params = dict(spec["params"])
    if overrides:
        params.update({k: v for k, v in overrides.items() if v is not None})
    name = spec["name"]
    cls = EXTRACTORS.get(name)
    if cls is None:
        raise ExtractorError(f"unknown audio extractor {name!r}: known {sorted(EXTRACTORS)}")
    ctor = {k: v for k, v in params.items() if k not in _DERIVED_PARAMS.get(name, ())}
    extractor = cls(**ctor)
    got = extractor.spec()
    for key, value in params.items():
        if key not in ctor and got["params"].get(key) != value:
            raise ExtractorError(
                f"extractor {name}: saved {key}={value!r} but the re-created extractor has "
                f"{got['params'].get(key)!r}: not the same feature extraction"
            )
    for key in ("dim", "sample_rate"):
        if key in spec and int(spec[key]) != int(got[key]):
            raise ExtractorError(
                f"extractor {name}: saved {key} {spec[key]} but the re-created extractor has "
                f"{got[key]}"
            )
    for key, value in (spec.get("check") or {}).items():
        if got["check"].get(key) != value:
            raise ExtractorError(
                f"extractor {name} ({params}): {key} differs from the one saved with the "
                f"model ({got['check'].get(key)} != {value}): not the same feature extraction"
                + (" (a different model folder?)" if key == "weights_sha256" else "")
            )
    for key, value in (spec.get("library") or {}).items():
        if got["library"].get(key) != value:
            warnings.warn(
                f"extractor {name}: {key} {got['library'].get(key)} here, {value} when the "
                "features were made; features may differ slightly",
                stacklevel=2,
            )
    return FeaturePipeline(extractor, spec.get("projection"))


#: params saved in a spec that are read from the model folder, not passed to the constructor
_DERIVED_PARAMS = {
    "egemaps": ("feature_set", "feature_level"),
    "compare": ("feature_set", "feature_level"),
    "hubert": ("normalize",),
    "wav2vec2": ("normalize",),
}


def raw_spec_key(spec: dict) -> str:
    """Short key of a spec's raw extraction (name, params, check; no projection)."""
    core = {k: spec.get(k) for k in ("name", "version", "params", "dim", "check")}
    return f"{spec['name']}-{_sha1(core)[:12]}"


# -- many files ---------------------------------------------------------------------------
_WORKER: Extractor | None = None


def _init_worker(spec: dict) -> None:
    global _WORKER
    _WORKER = pipeline_from_spec({**spec, "projection": None}).extractor


def _work(path: str) -> np.ndarray:
    return _WORKER.features_of(path)


_SAFE_KEY = re.compile(r"[^A-Za-z0-9._-]+")


def default_key(path) -> str:
    """Cache key of a file: its name plus a hash of its absolute path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    h = hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{_SAFE_KEY.sub('_', p.stem)}-{h}"


def _stderr_is_terminal() -> bool:
    import sys

    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class FeatureCache:
    """Per-utterance ``.npy`` files of one extractor under ``cache_dir/<spec key>/``
    (with the spec in ``spec.json``); a file is replaced atomically when written."""

    def __init__(self, cache_dir, extractor: Extractor, keys: Sequence[str]):
        spec = extractor.spec()
        self.folder = Path(cache_dir) / raw_spec_key(spec)
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "spec.json"
        if not info.exists():
            info.write_text(json.dumps(spec, indent=1))
        self.keys = list(keys)
        self.dim = extractor.dim

    def _file(self, i: int) -> Path:
        return self.folder / f"{_SAFE_KEY.sub('_', self.keys[i])}.npy"

    def get(self, i: int) -> np.ndarray | None:
        """The cached features of file ``i``, or None (absent, unreadable, wrong shape, not
        finite)."""
        f = self._file(i)
        if not f.is_file():
            return None
        try:
            v = np.load(f, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return v if v.shape == (self.dim,) and np.isfinite(v).all() else None

    def put(self, i: int, v: np.ndarray) -> None:
        from bridging.utils.files import atomic_output

        with atomic_output(self._file(i)) as tmp, open(tmp, "wb") as fh:  # no fsync per file
            np.save(fh, v, allow_pickle=False)


def _map_features(extractor: Extractor, paths: list[str], todo: list[int], workers: int):
    """``(i, features of paths[i])`` for every ``i`` of ``todo``, in order: serially, in
    threads or in spawned processes, as the extractor prefers."""
    if workers == 1 or len(todo) == 1:
        for i in todo:
            yield i, extractor.features_of(paths[i])
        return
    if extractor.parallel == "thread":
        pool = ThreadPoolExecutor(workers)
        results = pool.map(lambda j: extractor.features_of(paths[j]), todo)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(extractor.spec(),)
        )
        chunk = max(1, min(16, len(todo) // (4 * workers)))
        results = pool.map(_work, [paths[i] for i in todo], chunksize=chunk)
    with pool:
        try:
            yield from zip(todo, results)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def extract_files(
    pipeline: FeaturePipeline | Extractor,
    paths: Sequence,
    keys: Sequence[str] | None = None,
    cache_dir=None,
    workers: int = 1,
    progress: bool | None = None,
    desc: str = "features",
) -> np.ndarray:
    """Raw features [len(paths), dim] of audio files, in order.

    ``cache_dir``: a folder of per-utterance ``.npy`` files under a subfolder named after the
    extractor spec (:class:`FeatureCache`); files already there are loaded instead of
    extracted (resume). ``keys``: one cache key per file (default: :func:`default_key`).
    ``workers`` > 1 runs in parallel (processes or threads, as the extractor prefers).
    ``progress``: a tqdm bar (default: when more than 20 files and stderr is a terminal).
    """
    extractor = pipeline.extractor if isinstance(pipeline, FeaturePipeline) else pipeline
    paths = [os.fspath(p) for p in paths]
    n = len(paths)
    out = np.zeros((n, extractor.dim), dtype=np.float32)
    if n == 0:
        return out
    cache, todo = None, list(range(n))
    if cache_dir is not None:
        keys = [default_key(p) for p in paths] if keys is None else list(keys)
        if len(keys) != n:
            raise ValueError(f"{len(keys)} cache keys for {n} files")
        cache, todo = FeatureCache(cache_dir, extractor, keys), []
        for i in range(n):
            v = cache.get(i)
            if v is None:
                todo.append(i)
            else:
                out[i] = v
    if not todo:
        return out
    from tqdm.auto import tqdm

    # by default only on a terminal: into a log file every update would be a line
    show = progress if progress is not None else len(todo) > 20 and _stderr_is_terminal()
    bar = tqdm(total=len(todo), desc=desc, unit="file", disable=not show, leave=False)
    try:
        for i, v in _map_features(extractor, paths, todo, max(1, int(workers))):
            out[i] = v
            if cache is not None:
                cache.put(i, v)
            bar.update()
    finally:
        bar.close()
    return out


__all__ = [
    "EXTRACTORS",
    "Extractor",
    "ExtractorError",
    "FeaturePipeline",
    "create_extractor",
    "extract_files",
    "pipeline_from_spec",
    "register",
    "raw_spec_key",
]
