"""Markdown tables, the one format every section of the report is written in."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; columns whose cells are all numbers (or ``x ± y``) align
    right."""

    def cell(s) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    numeric = [
        all(_is_number(r[i]) for r in rows if r[i] != "") and any(r[i] != "" for r in rows)
        for i in range(len(head))
    ]
    lines = ["| " + " | ".join(cell(h) for h in head) + " |"]
    lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _is_number(s: str) -> bool:
    try:
        float(str(s).split(" ± ")[0])
    except ValueError:
        return False
    return True


__all__ = ["markdown_table"]
