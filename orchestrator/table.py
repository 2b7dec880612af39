"""Plain-text tables for the terminal: columns padded to their widest cell, two spaces apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def columns(rows: Sequence[Sequence[str]], reasons: Mapping[int, str] | None = None) -> list[str]:
    """One line per row, each column as wide as its widest cell (trailing spaces cut); after a
    row whose index is in ``reasons``, an indented ``why:`` line with that reason."""
    if not rows:
        return []
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines: list[str] = []
    for n, r in enumerate(rows):
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        if reasons and n in reasons:
            lines.append(f"  why: {reasons[n]}")
    return lines
