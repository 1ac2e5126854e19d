"""The error of bad input data, raised by every layer (readers, checks of files, runs)."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data: the message names the file, the field and what was expected."""

    # its public home (``from bridging.data.records import DataError``), as tracebacks name it
    __module__ = "bridging.data.records"


__all__ = ["DataError"]
