"""Hydra composition outside a Hydra app: one helper for reproduce, benchmarks and tests."""

from __future__ import annotations

from collections.abc import Sequence


def compose(
    config_name: str = "train", overrides: Sequence[str] = (), return_hydra_config: bool = False
):
    """The config ``conf/<config_name>.yaml`` composed with ``overrides`` (Hydra's compose API,
    version_base 1.3; ``return_hydra_config``: with the ``hydra`` node, e.g. a sweep's
    params); the global Hydra state is left clear before and after."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bridging.utils.paths import conf_dir

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            return hydra_compose(
                config_name, overrides=list(overrides), return_hydra_config=return_hydra_config
            )
    finally:
        GlobalHydra.instance().clear()


#: config keys that were renamed: old dotted key -> new one (the old key is refused with a
#: message naming the new one, on the command line and in config files)
RENAMED_KEYS = {"eval.keep": "eval.modalities"}


def renamed_key_message(old: str) -> str:
    return f"{old} was renamed {RENAMED_KEYS[old]}: give {RENAMED_KEYS[old]}=... instead"


def refuse_renamed_overrides(overrides: Sequence[str]) -> None:
    """A ValueError naming the new key when a command-line override sets a renamed key
    (``eval.keep=[a]``, ``+eval.keep=...``, ``~eval.keep``)."""
    for item in overrides:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key in RENAMED_KEYS:
            raise ValueError(renamed_key_message(key))


def refuse_renamed_keys(cfg) -> None:
    """A ValueError naming the new key when a composed config still holds a renamed key (a
    user's own config file written before the rename)."""
    from omegaconf import OmegaConf

    for old in RENAMED_KEYS:
        if OmegaConf.select(cfg, old, default=None, throw_on_missing=False) is not None:
            raise ValueError(renamed_key_message(old))


def hydra_sweep_dir():
    """The sweep dir (a Path) of the running Hydra multirun, else None (a single run, or no
    Hydra app at all)."""
    from pathlib import Path

    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return Path(HydraConfig.get().sweep.dir)
    except Exception:  # noqa: BLE001 - no Hydra app running
        return None
    return None
