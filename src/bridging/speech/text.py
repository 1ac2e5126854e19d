"""Sentence embeddings of the transcripts from a local sentence-transformers folder.

Reads the sentence-transformers folder layout with ``transformers`` only (no
sentence-transformers package needed): ``modules.json`` must list a Transformer module (the
folder itself), a Pooling module (``1_Pooling/config.json``: mean, CLS, max or
mean-sqrt-len pooling) and optionally a Normalize module, as in the usual models
(paraphrase-distilroberta-base-v1 of COGMEN's features, all-MiniLM-L6-v2, all-mpnet-base-v2).
Folders with other modules (Dense, ...) are refused. ``sentence_bert_config.json`` gives
``max_seq_length`` and ``do_lower_case``. Loaded with ``local_files_only``: never downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from bridging.data.records import DataError

SUPPORTED = {
    "sentence_transformers.models.Transformer": "transformer",
    "sentence_transformers.models.Pooling": "pooling",
    "sentence_transformers.models.Normalize": "normalize",
}


class SentenceEncoder:
    def __init__(self, path):
        folder = Path(path).expanduser().resolve()
        modules_file = folder / "modules.json"
        if not modules_file.is_file():
            raise DataError(f"{folder}: not a sentence-transformers folder (no modules.json)")
        modules = json.loads(modules_file.read_text())
        kinds = []
        for m in modules:
            kind = SUPPORTED.get(m.get("type"))
            if kind is None:
                raise DataError(
                    f"{folder}: module {m.get('type')!r} is not supported (supported: "
                    "Transformer, Pooling, Normalize)"
                )
            kinds.append((kind, folder / m.get("path", "")))
        if [k for k, _ in kinds[:2]] != ["transformer", "pooling"]:
            raise DataError(f"{folder}: expected Transformer then Pooling modules, got {kinds}")
        import torch
        from transformers import AutoModel, AutoTokenizer

        st_cfg_file = folder / "sentence_bert_config.json"
        st_cfg = json.loads(st_cfg_file.read_text()) if st_cfg_file.is_file() else {}
        pool_cfg = json.loads((kinds[1][1] / "config.json").read_text())
        modes = [
            k
            for k in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
            if pool_cfg.get(f"pooling_mode_{k}")
        ]
        if len(modes) != 1:
            raise DataError(f"{folder}: exactly one pooling mode is supported, got {modes}")
        self.torch = torch
        self.folder = folder
        self.pooling = modes[0]
        self.normalize = any(k == "normalize" for k, _ in kinds)
        self.max_len = int(st_cfg.get("max_seq_length") or 512)
        self.lower = bool(st_cfg.get("do_lower_case", False))
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.dim = int(self.model.config.hidden_size)

    def spec(self) -> dict:
        import transformers

        from bridging.speech.extractors import weights_fingerprint

        return {
            "name": "sentence-transformers",
            "version": 1,
            "params": {
                "path": os.fspath(self.folder),
                "pooling": self.pooling,
                "normalize": self.normalize,
                "max_seq_length": self.max_len,
                "do_lower_case": self.lower,
            },
            "dim": self.dim,
            "library": {"transformers": transformers.__version__},
            "check": {"weights_sha256": weights_fingerprint(self.folder)},
            "projection": None,
        }

    def encode(self, sentences, batch_size: int = 32, progress: bool | None = None):
        """Embeddings float32 [len(sentences), dim]."""
        from tqdm.auto import tqdm

        torch = self.torch
        texts = [(s or "").lower() if self.lower else (s or "") for s in sentences]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        from bridging.speech.extractors import _stderr_is_terminal

        show = progress if progress is not None else len(texts) > 200 and _stderr_is_terminal()
        for lo in tqdm(range(0, len(texts), batch_size), disable=not show, desc="text"):
            enc = self.tokenizer(
                texts[lo : lo + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_len,
                return_tensors="pt",
            )
            with torch.inference_mode():
                h = self.model(**enc).last_hidden_state  # [B, L, H]
            mask = enc["attention_mask"][..., None].to(h.dtype)
            if self.pooling == "cls_token":
                e = h[:, 0]
            elif self.pooling == "max_tokens":
                e = h.masked_fill(mask == 0, -1e9).max(1).values
            else:
                e = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if self.pooling == "mean_sqrt_len_tokens":
                    e = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9).sqrt()
            if self.normalize:
                e = torch.nn.functional.normalize(e, p=2, dim=1)
            out[lo : lo + len(e)] = e.numpy()
        return out


__all__ = ["SentenceEncoder"]
