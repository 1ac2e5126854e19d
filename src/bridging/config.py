"""Hydra composition outside a Hydra app: one helper for reproduce, benchmarks and tests."""

from __future__ import annotations

from collections.abc import Sequence


def compose(config_name: str = "train", overrides: Sequence[str] = ()):
    """The config ``conf/<config_name>.yaml`` composed with ``overrides`` (Hydra's compose API,
    version_base 1.3); the global Hydra state is left clear before and after."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bridging.paths import conf_dir

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            return hydra_compose(config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
