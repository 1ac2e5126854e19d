"""Reading wav files for feature extraction: mono float32 at the extractor's sample rate.

``read_audio(path)`` returns ``(signal, sample_rate)`` as stored (channels averaged);
``load_audio(path, sample_rate)`` also resamples (polyphase, :func:`scipy.signal.resample_poly`)
when the file's rate differs from the one the extractor expects. Files are read with
``soundfile`` (wav, flac, ogg, ...) when it is installed, else with the standard library's
``wave`` module (PCM wav of 8, 16, 24 or 32 bits). Every failure is an :class:`AudioError`
naming the file: missing, unreadable, not audio, empty, non-finite samples.
"""

from __future__ import annotations

import os
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from bridging.data.records import DataError


class AudioError(DataError):
    """An audio file that cannot be used: the message names the file and the reason."""


def _read_wave_stdlib(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as fh:
        channels, width, rate = fh.getnchannels(), fh.getsampwidth(), fh.getframerate()
        comp = fh.getcomptype()
        if comp != "NONE":
            raise AudioError(f"{path}: compressed wav ({comp}) needs the soundfile package")
        raw = fh.readframes(fh.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        v = (
            b[:, 0].astype(np.int32)
            | (b[:, 1].astype(np.int32) << 8)
            | (b[:, 2].astype(np.int32) << 16)
        )
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise AudioError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels)
    return x, rate


def read_audio(path) -> tuple[np.ndarray, int]:
    """``(signal, sample_rate)`` of an audio file: float32 mono (channels averaged) in [-1, 1]."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such audio file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, expected an audio file")
    from bridging.utils.files import check_input_file

    check_input_file(path, "audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        import soundfile
    except ImportError:  # pragma: no cover - soundfile is in the speech extra
        soundfile = None
    try:
        if soundfile is not None:
            x, rate = soundfile.read(path, dtype="float32", always_2d=False)
        else:
            x, rate = _read_wave_stdlib(path)
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure: name the file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"{path}: unreadable audio ({type(exc).__name__}: {msg})") from None
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        raise AudioError(f"{path}: no audio samples (an empty recording)")
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    return np.ascontiguousarray(x), int(rate)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling of a mono signal from ``rate`` to ``target`` Hz (float32)."""
    if rate == target:
        return x
    if rate <= 0 or target <= 0:
        raise ValueError(f"sample rates must be positive, got {rate} -> {target}")
    from scipy.signal import resample_poly

    ratio = Fraction(int(target), int(rate)).limit_denominator(10_000)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def load_audio(path, sample_rate: int | None = None, min_seconds: float = 0.0) -> np.ndarray:
    """The mono float32 signal of ``path`` at ``sample_rate`` (resampled if needed).

    ``min_seconds``: shorter recordings are an AudioError (an extractor's minimum input).
    """
    x, rate = read_audio(path)
    if sample_rate is not None and rate != sample_rate:
        x = resample(x, rate, int(sample_rate))
    sr = sample_rate or rate
    if min_seconds and len(x) < min_seconds * sr:
        raise AudioError(
            f"{os.fspath(path)}: {len(x) / sr:.3f} s of audio, shorter than the "
            f"{min_seconds:.3f} s the feature extractor needs"
        )
    return x


def write_wav(path, signal: np.ndarray, sample_rate: int = 16000) -> Path:
    """Write a mono float signal in [-1, 1] as 16-bit PCM wav (standard library only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.asarray(signal, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(pcm * 32767.0).astype("<i2")
    with wave.open(os.fspath(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(int(sample_rate))
        fh.writeframes(pcm.tobytes())
    return path


def duration_seconds(path) -> float:
    x, rate = read_audio(path)
    return len(x) / float(rate)


__all__ = ["AudioError", "read_audio", "load_audio", "resample", "write_wav", "duration_seconds"]
