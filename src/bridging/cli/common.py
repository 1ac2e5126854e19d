"""What bridging's commands share: errors as one line, quiet Lightning loggers (the Hydra
commands bridging-train, -eval, -predict), the argparse commands' parser and ``--force``
option, the ``a=100,t=768,v=512`` feature-size option (bridging-data ``--sizes``,
bridging-import-cogmen ``--feature-sizes``).

Every error is printed as ``<prog>: error: <message>`` (at most one more line suggesting the
fix) and the command exits 2 for bad input (a DataError, a bad checkpoint, a bad config value,
Hydra's own composition errors such as an unknown override key, an output that cannot be
written) and 1 for anything else. ``HYDRA_FULL_ERROR=1`` restores Hydra's behaviour: the
full traceback.

How: the console entry point sets ``HYDRA_FULL_ERROR`` itself while Hydra runs, so Hydra
re-raises instead of printing a traceback, and catches what comes out (composition errors,
a failed multirun job); in a single run the task function catches the job's own error, so
Hydra's "Error executing job" line is not printed either. A marker variable tells the
processes started from a job (DDP workers re-run the command) that the setting is ours.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import warnings

FULL_ERROR = "HYDRA_FULL_ERROR"
_OURS = "_BRIDGING_SHORT_ERRORS"
#: loggers that print INFO lines (and Lightning's "litlogger" tip) on every run
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch")


def quiet_lightning() -> None:
    """Lightning's loggers to WARNING: its INFO lines (GPU available, seed set, the litlogger
    tip, checkpoint restored) go; warnings, the progress bar and bridging's headline stay.
    Lightning sets its loggers to INFO when imported, so it is imported first."""
    import pytorch_lightning  # noqa: F401

    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def full_errors() -> bool:
    """Whether the user asked for tracebacks (HYDRA_FULL_ERROR=1 set by them, not by us)."""
    value = os.environ.get(FULL_ERROR, "")
    return value.lower() in ("1", "true", "yes") and not os.environ.get(_OURS)


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


#: exceptions that mean bad input (exit 2); anything else is an internal error (exit 1)
def _bad_input_types() -> tuple[type, ...]:
    import pickle

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bridging.data.records import DataError
    from bridging.utils.files import OutputError

    return (
        DataError,
        OutputError,
        ValueError,
        LookupError,
        OSError,
        pickle.UnpicklingError,
        HydraException,
        OmegaConfBaseException,
    )


def describe(exc: BaseException) -> tuple[str, str | None, int]:
    """(message, hint or None, exit code) of an exception, the message on one line."""
    from hydra.errors import HydraException, InstantiationException
    from omegaconf.errors import OmegaConfBaseException

    while isinstance(exc, InstantiationException) and exc.__cause__ is not None:
        exc = exc.__cause__  # the error of the object the config builds, not Hydra's wrapper
    code = 2 if isinstance(exc, _bad_input_types()) else 1
    hint = None
    if isinstance(exc, OmegaConfBaseException):
        msg = _first_line(exc)
        key = getattr(exc, "full_key", None)
        if key and str(key) not in msg:
            msg += f" (config key {key})"
    elif isinstance(exc, HydraException):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        msg = (lines[0] if lines else type(exc).__name__).rstrip(".")
        cause = exc.__cause__
        if cause is not None and _first_line(cause):
            msg += f": {_first_line(cause)}"
        rest = []
        for ln in lines[1:]:
            if ln.startswith("Config search path"):
                break  # Hydra's internals, not the fix
            rest.append(ln)
        hint = " ".join(rest) or None
    elif isinstance(exc, KeyError) and len(exc.args) == 1:
        msg = f"missing key {exc.args[0]!r}"
    else:
        msg = _one_line(exc) or type(exc).__name__
    if code == 1:
        msg = f"{type(exc).__name__}: {msg}"
        hint = f"(an internal error: {FULL_ERROR}=1 shows the traceback)"
    return msg, hint, code


def fail(prog: str, exc: BaseException):
    """Print ``exc`` as ``<prog>: error: ...`` (and its hint) and exit with its code."""
    msg, hint, code = describe(exc)
    print(f"{prog}: error: {msg}", file=sys.stderr)
    if hint:
        print(hint, file=sys.stderr)
    sys.stderr.flush()
    sys.exit(code)


def stdout_closed(prog: str) -> int:
    """After a BrokenPipeError: the reader of stdout went away (``| head``). One line on
    stderr, stdout pointed at /dev/null (so the interpreter's final flush does not fail
    again); returns the exit status, 2."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    print(
        f"{prog}: error: stdout: the reader closed the pipe (e.g. | head): the output is cut short",
        file=sys.stderr,
    )
    return 2


def command_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of an argparse command: its name, and its module docstring as the help
    text, line breaks kept."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_force_option(p, what: str) -> None:
    """``--force``: replace an existing output (``what``), never an input."""
    p.add_argument("--force", action="store_true", help=f"replace an existing {what}")


def feature_sizes(text: str) -> dict[str, int]:
    """argparse ``type`` of a feature-size option: ``"a=100,v=512"`` -> ``{"a": 100, "v":
    512}``. Each item is a modality (a, t or v, once) and a positive integer; anything else
    is an ``ArgumentTypeError`` that argparse prints as one line (exit 2)."""
    import argparse

    from bridging.data.records import MODALITY_ORDER

    expected = "expected MODALITY=SIZE items joined by commas, e.g. a=100,t=768,v=512"
    sizes: dict[str, int] = {}
    for item in text.split(","):
        name, eq, size = (part.strip() for part in item.partition("="))
        if not eq or name not in MODALITY_ORDER:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r}: {expected} (modalities {', '.join(MODALITY_ORDER)})"
            )
        if name in sizes:
            raise argparse.ArgumentTypeError(f"{name!r} given twice: {expected}")
        if not size.isdigit() or int(size) <= 0:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r}: the size of {name!r} must be a positive integer"
            )
        sizes[name] = int(size)
    return sizes


def _run_dir_error(exc: OSError) -> OSError:
    """Hydra's own failure to create the run dir (or write its record there), as an error
    naming the dir and the option; other errors as they are."""
    from bridging.utils.files import OutputError

    if isinstance(exc, OutputError) or not exc.filename:
        return exc
    why = exc.strerror or type(exc).__name__
    return OutputError(
        f"{exc.filename}: the run dir is not writable ({why}): give a writable hydra.run.dir"
    )


def _override_error(exc: Exception, argv) -> Exception:
    """Hydra's grammar error of an override (``data.path=/x/a=b.pkl``), as an error naming
    the override and how to quote its value; other errors as they are."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    if not isinstance(exc, OverrideParseException):
        return exc
    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            parser.parse_overrides([arg])
        except Exception as bad:  # noqa: BLE001 - the override that does not parse
            key, _, value = arg.partition("=")
            why = _first_line(bad) or "not a valid override"
            return ValueError(
                f"{arg}: not a valid override ({why}): quote a value holding '=' or another "
                f"of Hydra's special characters, e.g. {key}=\"'{value}'\""
            )
    return exc


def _hydra_output_dir() -> str | None:
    """The run's output dir, once Hydra has set its config; None before."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.output_dir) or None
    except Exception:  # noqa: BLE001 - not set yet
        return None


def _disk_full_error(exc: BaseException, run_dir: str | None = None) -> BaseException:
    """A write that ran out of room somewhere in the run dir (a logger's CSV file, Hydra's
    record) without naming its file, as an error naming the run dir, the free space and the
    option; other errors (and those that name their file) as they are."""
    from bridging.utils.files import OutputError, disk_full_error, is_disk_full

    if isinstance(exc, OutputError) or not is_disk_full(exc):
        return exc
    where = getattr(exc, "filename", None) or run_dir or _hydra_output_dir()
    if not where:
        return exc
    return disk_full_error(where, exc, "free some space or give another hydra.run.dir")


def _multirun() -> bool:
    from bridging.runs.config import hydra_sweep_dir

    return hydra_sweep_dir() is not None


def hydra_command(prog: str, config_name: str):
    """Decorator: turn a task function ``task(cfg)`` into the console entry point of a Hydra
    app over ``conf/<config_name>.yaml`` whose errors are one line (see the module doc).
    The entry point's ``task`` attribute is the undecorated function."""
    import hydra

    from bridging.utils.paths import conf_dir

    def wrap(task):
        @functools.wraps(task)
        def job(cfg):
            quiet_lightning()
            from bridging.runs.rundir import discard_created_dirs

            if full_errors() or _multirun():
                # a sweep's failed job goes back to the sweeper (Optuna records a failed
                # trial); what ends the sweep is printed by the entry point
                result = task(cfg)
                discard_created_dirs(failed=False)  # writes the record Hydra held back
                return result
            # a log file that cannot be written (the disk is full) must not print a
            # traceback per record: the run's own error says what happened
            logging.raiseExceptions = False

            try:
                result = task(cfg)
            except Exception as exc:  # noqa: BLE001 - every error becomes one line
                discard_created_dirs(failed=True)  # eval/predict: a dir made for nothing
                fail(prog, _disk_full_error(exc))
            discard_created_dirs(failed=False)
            return result

        hydra_main = hydra.main(
            version_base="1.3", config_path=conf_dir(), config_name=config_name
        )(job)

        @functools.wraps(task)
        def main():
            # a deprecation inside Lightning (torch's pytree API), nothing a user can act on
            warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
            from bridging.runs.config import refuse_renamed_overrides

            if any(a in ("--help", "-h") for a in sys.argv[1:]):
                # what the command does, then Hydra's list of every group and config key
                doc = sys.modules[task.__module__].__doc__ or ""
                print(doc.strip() + "\n", flush=True)
            try:
                refuse_renamed_overrides(sys.argv[1:])
            except ValueError as exc:
                fail(prog, exc)
            if full_errors():
                return hydra_main()
            saved = {k: os.environ.get(k) for k in (FULL_ERROR, _OURS)}
            os.environ[FULL_ERROR] = "1"  # Hydra re-raises; the error is printed below
            os.environ[_OURS] = "1"
            try:
                return hydra_main()
            except OSError as exc:
                # the task's own errors end inside it: this is Hydra making the run dir or
                # writing its record there; a dir this run created goes again
                from bridging.runs.rundir import discard_created_dirs, release_run_dirs

                dirs = release_run_dirs(refused=True) + discard_created_dirs(failed=True)
                full = _disk_full_error(exc, dirs[0] if dirs else None)
                fail(prog, full if full is not exc else _run_dir_error(exc))
            except Exception as exc:  # noqa: BLE001 - every error becomes one line
                fail(prog, _override_error(exc, sys.argv[1:]))
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

        main.task = task
        return main

    return wrap
