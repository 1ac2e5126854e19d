"""Where bridging's Hydra configs live."""

from __future__ import annotations

import os
from pathlib import Path


def conf_dir() -> str:
    """The conf/ folder: $BRIDGING_CONF_DIR, else the repository's conf/ (editable install)."""
    env = os.environ.get("BRIDGING_CONF_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "conf")
    for c in candidates:
        if (c / "train.yaml").is_file():
            return str(c)
    raise FileNotFoundError(
        "bridging's configs (conf/train.yaml) were not found; install the repository in "
        "editable mode (make install) or set BRIDGING_CONF_DIR to its conf/ folder"
    )
