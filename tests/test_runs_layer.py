"""The house's one-way structure (the floors of LAYERS: cli -> runs -> report/speech/
cogmen_import -> recipes -> models/losses -> data -> utils, no import cycle, nothing loose at
the package root), one CLI style with complete --help, one name per idea (eval.modalities,
the baseline's kind)."""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

import pytest
import tomllib
import torch

import bridging

SRC = Path(bridging.__file__).parent
ROOT = SRC.parent.parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _calls(path: Path) -> set[str]:
    """The names of every called function or class (``pl.Trainer(...)`` -> ``Trainer``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def _code_strings(path: Path) -> str:
    """Every string constant of a file that is not a docstring, joined."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    return "\n".join(
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    )


def _files(*parts) -> list[Path]:
    base = SRC.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]


def test_recipes_never_call_back_into_runs_build_trainers_or_read_hydra():
    for path in _files("recipes"):
        mods = _imports(path)
        bad = {m for m in mods if m.startswith(("bridging.runs", "bridging.cli", "hydra"))}
        assert not bad, f"{path.name} imports {bad}"
        assert "Trainer" not in _calls(path), f"{path.name} builds a Trainer"
        assert "metrics.json" not in _code_strings(path), f"{path.name} reads a run dir"
        assert not _calls(path) & {"read_text", "open", "glob", "rglob"}, path.name


def test_models_losses_and_masking_import_only_torch_pyg_and_their_own_layer():
    allowed = ("torch", "torch_geometric", "bridging.models", "bridging.losses")
    allowed += ("bridging.data.records", "__future__", "math", "typing", "dataclasses")
    allowed += ("warnings", "collections", "functools")
    # where PyG writes the modules it generates for a message-passing layer (utils/pyg.py)
    allowed += ("bridging.utils.pyg",)
    for path in [*_files("models"), *_files("losses"), *_files("recipes", "masking")]:
        bad = {m for m in _imports(path) if not m.startswith(allowed)}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_runs_never_import_the_cli():
    for path in _files("runs"):
        bad = {m for m in _imports(path) if m.startswith("bridging.cli")}
        assert not bad, f"runs/{path.name} imports {bad}"


def test_the_old_modules_are_gone():
    for name in ("training", "evaluation", "reproduce", "io"):
        assert not (SRC / f"{name}.py").exists(), name
    moved = ("cogmen_format", "dialoguernn_format", "meld_format", "native", "safe_pickle")
    moved += ("sources", "synthetic", "synthetic_meld", "synthetic_legacy", "calibration")
    for name in moved:  # now in data/formats/ and data/synthetic/
        assert not (SRC / "data" / f"{name}.py").exists(), name


#: The floors, top to bottom: a package imports only from its own floor or a lower one. The
#: package root (``bridging/__init__.py``: the version) counts as the lowest floor.
LAYERS = (
    ("cli",),
    ("runs",),
    ("report", "speech", "cogmen_import"),
    ("recipes",),
    ("models", "losses"),
    ("data",),
    ("utils",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the bridging modules it imports, anywhere in the file (lazy imports inside
    functions too; relative imports resolved; ``from package import module`` is an arrow to
    the module, ``from module import name`` one to the module)."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}

    def known(name: str) -> str | None:
        parts = name.split(".")
        while parts and ".".join(parts) not in paths:
            parts.pop()
        return ".".join(parts) or None

    graph = {}
    for mod, path in paths.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.add(full if full in paths else base)
        graph[mod] = {t for t in map(known, targets) if t and t != mod}
    return graph


def _floor(module: str) -> int | None:
    """The floor of a module (0: the top), None for a package on no floor."""
    parts = module.split(".")
    if len(parts) == 1:  # the package root
        return len(LAYERS)
    return next((i for i, floor in enumerate(LAYERS) if parts[1] in floor), None)


def test_the_package_root_holds_only_layered_packages():
    loose = sorted(p.name for p in SRC.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules loose at the package root: {loose}"
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {name for floor in LAYERS for name in floor}
    for group in ("formats", "synthetic"):  # data/: formats, synthetic corpora, the DataModule
        assert (SRC / "data" / group / "__init__.py").is_file(), group


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    cycles = _cycles(_import_graph())
    assert not cycles, "modules that import each other: " + "; ".join(map(" ".join, cycles))


def test_no_arrow_runs_up_a_floor():
    up = sorted(
        f"{a} -> {b}"
        for a, targets in _import_graph().items()
        for b in targets
        if _floor(a) is None or _floor(b) is None or _floor(b) < _floor(a)
    )
    assert not up, "imports from a higher floor: " + "; ".join(up)


def _scripts() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return meta["project"]["scripts"]


def test_every_command_is_a_hydra_app_or_argparse_and_lives_in_cli():
    scripts = _scripts()
    assert len(scripts) >= 9
    for prog, target in scripts.items():
        module_name, func = target.split(":")
        assert module_name.startswith("bridging.cli."), f"{prog}: {module_name} outside cli/"
        module = importlib.import_module(module_name)
        main = getattr(module, func)
        hydra_app = hasattr(main, "task")  # bridging.cli.common.hydra_command
        argparse_app = isinstance(getattr(module, "build_parser", None), type(main)) and (
            isinstance(module.build_parser(), argparse.ArgumentParser)
        )
        assert hydra_app != argparse_app, f"{prog}: neither (or both) Hydra and argparse"
        assert not hasattr(module, "parse_overrides"), f"{prog}: a home-made key=value parser"


@pytest.mark.parametrize("prog", sorted(_scripts()))
def test_help_lists_every_option(prog, capsys, monkeypatch):
    module_name, func = _scripts()[prog].split(":")
    module = importlib.import_module(module_name)
    main = getattr(module, func)
    monkeypatch.setattr(sys, "argv", [prog, "--help"])
    with pytest.raises(SystemExit) as exit_:
        main(["--help"]) if not hasattr(main, "task") else main()
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    first = (module.__doc__ or "").strip().splitlines()[0]
    assert first and first in out  # what the command does
    if hasattr(main, "task"):  # Hydra: every group and every top-level key of its config
        from bridging.runs.config import compose

        name = {"bridging-train": "train", "bridging-eval": "eval"}.get(prog, "predict")
        cfg = compose(name, ["ckpt_path=x"] if name != "train" else [])
        assert "== Configuration groups ==" in out and "== Config ==" in out
        for key in cfg:
            assert f"\n{key}:" in out, f"{prog} --help lacks {key}"
    else:  # argparse: every option string of the parser
        parser = module.build_parser()
        for action in parser._actions:
            for opt in action.option_strings:
                assert opt in out, f"{prog} --help lacks {opt}"


def test_the_old_eval_key_is_refused_naming_the_new_one(compose_cfg, capsys, monkeypatch):
    from bridging.cli.train import main
    from bridging.runs.train import build_datamodule, build_recipe

    monkeypatch.setattr(sys, "argv", ["bridging-train", "eval.keep=[a]", "debug=tiny"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "bridging-train: error: eval.keep was renamed eval.modalities: give "
        "eval.modalities=... instead"
    ]
    cfg = compose_cfg(["debug=tiny", "+eval.keep=[a]"])  # e.g. a user's old config file
    dm = build_datamodule(cfg)
    dm.setup()
    with pytest.raises(ValueError, match="eval.keep was renamed eval.modalities"):
        build_recipe(cfg, dm.facts)
    cfg = compose_cfg(["debug=tiny", "eval.modalities=[a]"])
    assert build_recipe(cfg, dm.facts).eval_modalities == ["a"]


def test_a_checkpoint_written_before_the_rename_still_loads(tmp_path):
    from bridging.data.datamodule import IEMOCAPDataModule
    from bridging.recipes import load_recipe
    from bridging.recipes.teacher import TeacherRecipe

    dm = IEMOCAPDataModule(
        modalities=["a", "v"],
        synthetic={"seed": 0, "n_dialogues": 8, "n_test_dialogues": 2, "min_len": 3, "max_len": 6},
    )
    dm.setup()
    recipe = TeacherRecipe(
        facts=dm.facts.to_dict(),
        modalities=["a", "v"],
        model={"seqcontext_nlayer": 1, "gnn_nheads": 1},
        eval_modalities=["a"],
    )
    hp = dict(recipe.hparams)
    hp["eval_keep"] = hp.pop("eval_modalities")  # as checkpoints of 2026-12-01 hold it
    path = tmp_path / "old.ckpt"
    torch.save({"bridging": {"kind": "teacher"}, "state_dict": recipe.state_dict(),
                "hyper_parameters": hp}, path)  # fmt: skip
    loaded = load_recipe(path)
    assert loaded.eval_modalities == ["a"] and loaded.kind == "teacher"


def test_the_audio_only_baseline_says_what_it_is(compose_cfg):
    from bridging.runs.train import build_datamodule, build_recipe

    cfg = compose_cfg(["experiment=audio_only", "debug=tiny"])
    dm = build_datamodule(cfg)
    dm.setup()
    recipe = build_recipe(cfg, dm.facts)
    assert recipe.kind == "baseline" and recipe.modalities == ["a"]
    cfg = compose_cfg(["experiment=teacher", "debug=tiny"])
    dm = build_datamodule(cfg)
    dm.setup()
    assert build_recipe(cfg, dm.facts).kind == "teacher"
