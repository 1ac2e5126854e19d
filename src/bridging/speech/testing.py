"""A tiny fake IEMOCAP release, in the real file formats, for tests and demos.

``write_fake_release(root)`` writes SessionN/dialog/transcriptions, SessionN/dialog/EmoEvaluation
and SessionN/sentences/wav with synthetic 16-bit PCM wavs (numpy + the standard library's
``wave``: no system package needed). Each emotion has its own sound (pitch, loudness, noise),
so a model can learn something from it. The files carry the traps of the real release: the
transcript lists utterances out of time order, the dialogue name's gender letter differs from
some utterances' speakers, evaluation files have headers, annotator lines and sub-folders,
and some utterances have codes outside the label sets (xxx, sur, fru/exc for 4-way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridging.speech.audio import write_wav

#: emotion -> (pitch Hz, amplitude, noise level)
SOUNDS = {
    "hap": (320.0, 0.5, 0.02),
    "sad": (110.0, 0.15, 0.01),
    "neu": (180.0, 0.3, 0.01),
    "ang": (260.0, 0.8, 0.25),
    "exc": (380.0, 0.6, 0.05),
    "fru": (230.0, 0.5, 0.15),
    "xxx": (200.0, 0.3, 0.1),
    "sur": (400.0, 0.4, 0.05),
    "fea": (290.0, 0.25, 0.08),
    "dis": (150.0, 0.45, 0.2),
}
EMOTIONS = ("hap", "sad", "neu", "ang", "exc", "fru", "xxx", "sur")


def utterance_sound(emotion: str, seconds: float, rng, sample_rate: int = 16000) -> np.ndarray:
    """A voiced-like sound: a harmonic tone with vibrato, an envelope and some noise."""
    f0, amp, noise = SOUNDS[emotion]
    n = max(1, int(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f = f0 * (1 + 0.05 * rng.standard_normal()) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    x = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.03 + 1e-3)
    x = amp * env * x / 1.8 + noise * rng.standard_normal(n)
    return np.clip(x, -1, 1).astype(np.float32)


def write_fake_release(
    root,
    dialogues_per_session=(3, 3, 3, 3, 2),
    utterances: int = 6,
    seed: int = 0,
    sample_rate: int = 16000,
    seconds=(0.3, 0.6),
) -> list[dict]:
    """Write the fake release under ``root``; return one dict per utterance (dialogue, id,
    speaker, emotion, start, end, text, wav), utterances in true time order per dialogue."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = []
    for s_idx, n_dialogues in enumerate(dialogues_per_session):
        session = s_idx + 1
        sdir = root / f"Session{session}"
        tr_dir = sdir / "dialog" / "transcriptions"
        ev_dir = sdir / "dialog" / "EmoEvaluation"
        (ev_dir / "Categorical").mkdir(parents=True, exist_ok=True)
        tr_dir.mkdir(parents=True, exist_ok=True)
        for k in range(n_dialogues):
            gender = "F" if (session + k) % 2 else "M"
            kind = "impro" if k % 2 == 0 else "script"
            name = f"Ses0{session}{gender}_{kind}0{k + 1}"
            t = 1.0 + rng.uniform(0, 1)
            utts = []
            counters = {"M": 0, "F": 0}
            for i in range(utterances):
                spk = "M" if rng.uniform() < 0.5 else "F"
                if i == 0:
                    spk = "M" if gender == "F" else "F"  # the gender letter trap
                emo = EMOTIONS[int(rng.integers(0, 6))]
                if i == 2 and k == 0:
                    emo = "xxx"
                if i == 3 and k == 1:
                    emo = "sur"
                if i < 3 and emo not in ("hap", "sad", "neu", "ang") and k == 2:
                    emo = "neu"
                dur = float(rng.uniform(*seconds))
                uid = f"{name}_{spk}{counters[spk]:03d}"
                counters[spk] += 1
                start, end = t, t + dur
                t = end + rng.uniform(0.1, 0.5)
                text = f"utterance {i} of {name} feeling {emo}"
                wav = sdir / "sentences" / "wav" / name / f"{uid}.wav"
                write_wav(wav, utterance_sound(emo, dur, rng, sample_rate), sample_rate)
                item = {
                    "dialogue": name,
                    "session": session,
                    "id": uid,
                    "speaker": spk,
                    "emotion": emo,
                    "start": start,
                    "end": end,
                    "text": text,
                    "wav": wav,
                }
                utts.append(item)
                written.append(item)
            # transcription: M lines first then F lines (out of time order), plus a noise line
            lines = [
                f"{u['id']} [{u['start']:08.4f}-{u['end']:08.4f}]: {u['text']}"
                for u in sorted(utts, key=lambda u: (u["speaker"] != "M", u["start"]))
            ]
            lines.insert(1, "M: [LAUGHTER]")
            (tr_dir / f"{name}.txt").write_text("\n".join(lines) + "\n")
            ev = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for u in reversed(utts):
                v, a, d = rng.uniform(1, 5, 3)
                ev.append(
                    f"[{u['start']:.4f} - {u['end']:.4f}]\t{u['id']}\t{u['emotion']}\t"
                    f"[{v:.4f}, {a:.4f}, {d:.4f}]"
                )
                ev.append("C-E1:\tNeutral;\t()")
                ev.append("A-E2:\tval 3; act 2; dom  3;\t()")
                ev.append("")
            (ev_dir / f"{name}.txt").write_text("\n".join(ev) + "\n")
            (ev_dir / "Categorical" / f"{name}_e1_cat.txt").write_text("ignored\n")
    return written


#: MELD emotion -> the sound of :data:`SOUNDS` it is given
MELD_SOUNDS = {
    "neutral": "neu",
    "surprise": "sur",
    "fear": "fea",
    "sadness": "sad",
    "joy": "hap",
    "disgust": "dis",
    "anger": "ang",
}
MELD_SENTIMENT = {
    "neutral": "neutral",
    "surprise": "positive",
    "fear": "negative",
    "sadness": "negative",
    "joy": "positive",
    "disgust": "negative",
    "anger": "negative",
}
MELD_COLUMNS = (
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
)
MELD_NAMES = ("Ross", "Rachel", "Monica", "Chandler", "Joey", "Phoebe", "Mr. Geller", "Janice")


def write_fake_meld_release(
    root,
    dialogues=(("train", 12), ("dev", 3), ("test", 4)),
    utterances=(2, 6),
    speakers=(2, 4),
    seed: int = 0,
    sample_rate: int = 16000,
    seconds=(0.3, 0.6),
) -> list[dict]:
    """Write a fake MELD release under ``root``: ``<split>_sent_emo.csv`` (MELD's columns) and
    ``wav/<split>/diaX_uttY.wav`` (the layout of ``bridging-data prepare-meld``, docs/meld.md
    section 8). Return one dict per utterance (split, dialogue, utterance, speaker, emotion,
    sentiment, text, wav, sr), in Utterance_ID order per dialogue, dialogues in id order.

    The CSVs carry the traps of the real ones: Dialogue_IDs restart in every split and have a
    gap (train's id 1 is absent, as MELD's 60), rows are not in Utterance_ID order within a
    dialogue, texts hold commas and quotes. Each split's first dialogue has 2 speakers."""
    import csv

    rng = np.random.default_rng(seed)
    root = Path(root)
    emotions = tuple(MELD_SOUNDS)
    written, sr = [], 0
    for split, n_dialogues in dialogues:
        rows = []
        ids = [k for k in range(n_dialogues + 1) if not (split == "train" and k == 1)]
        for dia in ids[:n_dialogues]:
            n_spk = 2 if dia == 0 else int(rng.integers(speakers[0], speakers[1] + 1))
            names = [str(n) for n in rng.choice(MELD_NAMES, size=n_spk, replace=False)]
            n_utt = max(n_spk, int(rng.integers(utterances[0], utterances[1] + 1)))
            order = list(range(n_spk)) + [int(i) for i in rng.integers(0, n_spk, n_utt - n_spk)]
            for utt, who in enumerate(order):
                emo = emotions[int(rng.integers(0, len(emotions)))]
                dur = float(rng.uniform(*seconds))
                wav = root / "wav" / split / f"dia{dia}_utt{utt}.wav"
                write_wav(
                    wav, utterance_sound(MELD_SOUNDS[emo], dur, rng, sample_rate), sample_rate
                )
                item = {
                    "split": split,
                    "dialogue": dia,
                    "utterance": utt,
                    "speaker": names[who],
                    "slot": who,
                    "emotion": emo,
                    "sentiment": MELD_SENTIMENT[emo],
                    "text": f'Oh, "{emo}"! utterance {utt} of dialogue {dia}',
                    "wav": wav,
                }
                written.append(item)
                rows.append(item)
        # within a dialogue, rows out of Utterance_ID order (the last one first)
        last = {r["dialogue"]: r["utterance"] for r in rows}
        rows.sort(
            key=lambda r: (r["dialogue"], r["utterance"] != last[r["dialogue"]], r["utterance"])
        )
        with open(root / f"{split}_sent_emo.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(MELD_COLUMNS)
            for r in rows:
                sr += 1
                r["sr"] = sr
                w.writerow(
                    [
                        sr,
                        r["text"],
                        r["speaker"],
                        r["emotion"],
                        r["sentiment"],
                        r["dialogue"],
                        r["utterance"],
                        3,
                        7,
                        "00:14:38,127",
                        "00:14:40,378",
                    ]
                )
    return written


__all__ = [
    "SOUNDS",
    "utterance_sound",
    "write_fake_meld_release",
    "write_fake_release",
]
