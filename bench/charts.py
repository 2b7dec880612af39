"""SVG charts of bench/results.json: horizontal bars, one chart per measured figure.

Plain SVG text (no plotting library), the same bytes for the same results: no timestamps,
fixed number formats, the order of results.json. ``bench/run.py`` writes them next to
results.json (``charts/*.svg``) every time it saves; results.md embeds them.

    .venv/bin/python bench/charts.py bench/results.json   # redraw from an earlier run, measure nothing

The command above writes ``bench/charts/*.svg`` and re-renders ``bench/results.md`` (the
same text ``make bench`` writes) so its links match the charts drawn.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

CHARTS_DIR = "charts"  # beside results.json / results.md; the markdown links are relative to it

# What a bar stands for: its colour and its legend entry.
KINDS: dict[str, tuple[str, str]] = {
    "ours": ("#2b6cb0", "ours"),
    "reference": ("#718096", "official recipe (reference)"),
    "debian": ("#c05621", "Debian's python3"),
    "base": ("#cbd5e0", "base image"),
    "step": ("#2b6cb0", ""),
}

WIDTH = 760
ROW = 26  # px per bar
BAR = 16
CHAR = 6.6  # approximate advance of a 12 px sans-serif character, for the column widths
LEGEND_CHAR = 5.8  # the same at 11 px
TOP = 58  # title and subtitle above the first bar
PAD = 12
HALO = 'stroke="#ffffff" stroke-width="3" paint-order="stroke"'  # a value stays legible over a marker


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: not measured (no bar, says so)
    kind: str = "ours"
    note: str = ""  # after the value, e.g. "(0.58x reference)"


@dataclass(frozen=True)
class Marker:
    """A dashed vertical line across the bars, e.g. a target."""

    value: float
    label: str


@dataclass(frozen=True)
class Chart:
    name: str  # file stem: charts/<name>.svg
    title: str
    unit: str
    bars: tuple[Bar, ...]
    subtitle: str = ""
    digits: int = 1
    markers: tuple[Marker, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.svg"


# --------------------------------------------------------------------------- drawing


def _num(x: float, digits: int = 1) -> str:
    """A coordinate or value with fixed digits; never "-0.0"."""
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def value_text(chart: Chart, bar: Bar) -> str:
    if bar.value is None:
        return "not measured"
    sep = "" if chart.unit == "x" else " "  # 1.23x, 118.5 MB
    text = f"{_num(bar.value, chart.digits)}{sep}{chart.unit}".strip()
    return f"{text} {bar.note}" if bar.note else text


def scale(chart: Chart) -> float:
    """The largest value a bar or marker reaches: the full width of the bar area."""
    values = [b.value for b in chart.bars if b.value is not None and math.isfinite(b.value)]
    values += [m.value for m in chart.markers if math.isfinite(m.value)]
    top = max(values, default=0.0)
    return top if top > 0 else 0.0


def bar_width(value: float | None, top: float, area: float) -> float:
    """Width in px of a bar of ``value`` when ``top`` spans ``area`` px; a positive value is
    at least 1 px so it shows; a negative, missing or non-finite one is 0."""
    if value is None or not math.isfinite(value) or value <= 0 or top <= 0:
        return 0.0
    return max(1.0, round(min(value, top) / top * area, 1))


def render_svg(chart: Chart) -> str:
    label_w = min(300.0, max((len(b.label) for b in chart.bars), default=4) * CHAR + 2 * PAD)
    value_w = min(260.0, max((len(value_text(chart, b)) for b in chart.bars), default=4) * CHAR + 2 * PAD)
    x0 = label_w
    area = max(80.0, WIDTH - label_w - value_w - PAD)
    top = scale(chart)
    kinds = [k for k in dict.fromkeys(b.kind for b in chart.bars) if KINDS.get(k, ("", ""))[1]]
    rows_h = len(chart.bars) * ROW
    markers_h = 18 * len(chart.markers)
    legend_h = 22 if len(kinds) > 1 else 0
    height = TOP + rows_h + (8 + markers_h if chart.markers else 0) + legend_h + PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{_num(height, 0)}" '
        f'viewBox="0 0 {WIDTH} {_num(height, 0)}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect width="{WIDTH}" height="{_num(height, 0)}" fill="#ffffff"/>',
        f'<text x="{PAD}" y="22" font-size="15" font-weight="bold" fill="#1a202c">'
        f"{escape(chart.title)}</text>",
    ]
    if chart.subtitle:
        out.append(f'<text x="{PAD}" y="40" font-size="11" fill="#4a5568">{escape(chart.subtitle)}</text>')
    out.append(f'<line x1="{_num(x0)}" y1="{TOP - 4}" x2="{_num(x0)}" y2="{TOP + rows_h}" '
               'stroke="#a0aec0" stroke-width="1"/>')
    y_end = TOP + rows_h
    marks = [(x0 + bar_width(m.value, top, area), y_end + 8 + 18 * j + 12, m)
             for j, m in enumerate(chart.markers)]
    for mx, ly, _ in marks:  # behind the bars and their values
        out.append(f'<line x1="{_num(mx)}" y1="{TOP - 4}" x2="{_num(mx)}" y2="{_num(ly - 10)}" '
                   'stroke="#e53e3e" stroke-width="1" stroke-dasharray="4 3"/>')
    for i, bar in enumerate(chart.bars):
        y = TOP + i * ROW
        mid = y + ROW / 2 + 4  # text baseline
        colour = KINDS.get(bar.kind, KINDS["ours"])[0]
        w = bar_width(bar.value, top, area)
        text = value_text(chart, bar)
        out.append(f"<g><title>{escape(f'{bar.label}: {text}')}</title>")
        out.append(f'<text x="{_num(x0 - 8)}" y="{_num(mid)}" text-anchor="end" fill="#1a202c">'
                   f"{escape(bar.label)}</text>")
        if w > 0:
            out.append(f'<rect x="{_num(x0)}" y="{_num(y + (ROW - BAR) / 2)}" width="{_num(w)}" '
                       f'height="{BAR}" fill="{colour}"/>')
        fill = "#1a202c" if bar.value is not None else "#a0aec0"
        out.append(f'<text x="{_num(x0 + w + 6)}" y="{_num(mid)}" fill="{fill}" {HALO}>'
                   f"{escape(text)}</text></g>")
    for mx, ly, m in marks:
        anchor = "end" if mx > x0 + area / 2 else "start"
        out.append(f'<text x="{_num(mx + (-4 if anchor == "end" else 4))}" y="{_num(ly)}" '
                   f'text-anchor="{anchor}" font-size="11" fill="#c53030">{escape(m.label)}</text>')
    if legend_h:
        ly = height - PAD - 6
        x = float(PAD)
        for kind in kinds:
            colour, name = KINDS[kind]
            out.append(f'<rect x="{_num(x)}" y="{_num(ly - 10)}" width="12" height="12" fill="{colour}"/>')
            out.append(f'<text x="{_num(x + 17)}" y="{_num(ly)}" font-size="11" fill="#4a5568">'
                       f"{escape(name)}</text>")
            x += 17 + len(name) * LEGEND_CHAR + 18
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- from results.json


def kind_of(key: str) -> str:
    """The colour class of a bench image key (bench/images.py catalogue)."""
    return key if key in ("reference", "debian", "base") else "ours"


def image_label(results: dict[str, Any], key: str) -> str:
    """The bench image's label (bench/images.py), e.g. "ours runtime (release)"; else its key."""
    label = _get(results, "meta", "images", key, "label") or _get(results, "size", "images", key, "label")
    return str(label) if label else key


def _ordered(keys: Iterable[str]) -> list[str]:
    """Ours first (in results.json's order), then the reference, Debian's and the base."""
    rank = {"ours": 0, "reference": 1, "debian": 2, "base": 3}
    return sorted(keys, key=lambda k: rank[kind_of(k)])  # stable: results.json's order within a kind


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _num_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _size_charts(results: dict[str, Any]) -> list[Chart]:
    imgs = _get(results, "size", "images")
    if not isinstance(imgs, dict) or not imgs:
        return []
    out = []
    for name, field, what in (("size", "disk_bytes", "on disk (the engine's image size)"),
                              ("size-compressed", "compressed_bytes",
                               "compressed (config + layers in the registry manifest)")):
        bars = []
        for key in _ordered(imgs):
            b = _num_or_none(imgs[key].get(field))
            bars.append(Bar(image_label(results, key), None if b is None else b / 1e6, kind_of(key)))
        markers: tuple[Marker, ...] = ()
        minimal_mb = _num_or_none(_get(results, "targets", "minimal_mb"))
        if any(k.endswith("-minimal") for k in imgs) and minimal_mb is not None:
            markers = (Marker(minimal_mb, f"minimal target: <= {_num(minimal_mb, 0)} MB"),)
        out.append(Chart(name, f"Image size, {what.split(' (')[0]}", "MB", tuple(bars),
                         subtitle=f"MB {what}; shorter is better",
                         markers=markers if field == "disk_bytes" else ()))
    return out


STARTUP_ORDER = ("pass", "imports", "pass-no-site")


def _startup_targets(results: dict[str, Any]) -> set[str]:
    """Commands with a target: those of a ``startup.<profile>.<cmd>`` figure that has one."""
    out = set()
    for f in results.get("figures") or []:
        parts = str(f.get("id", "")).split(".")
        if len(parts) == 3 and parts[0] == "startup" and f.get("target"):
            out.add(parts[2])
    return out


def _startup_charts(results: dict[str, Any]) -> list[Chart]:
    st = results.get("startup")
    imgs = _get(st, "images")
    if not isinstance(imgs, dict) or not imgs:
        return []
    commands = _get(st, "commands") or {}
    cmds = list(dict.fromkeys(c for k in imgs for c in (imgs[k] or {})))
    cmds.sort(key=lambda c: STARTUP_ORDER.index(c) if c in STARTUP_ORDER else len(STARTUP_ORDER))
    with_target = _startup_targets(results)
    ratio = _num_or_none(_get(results, "targets", "startup_ratio"))
    out = []
    for cmd in cmds:
        ref = _num_or_none(_get(imgs, "reference", cmd, "median_ms"))
        bars = []
        for key in _ordered(imgs):
            v = _num_or_none(_get(imgs, key, cmd, "median_ms"))
            note = f"({v / ref:.2f}x reference)" if v is not None and ref and key != "reference" else ""
            bars.append(Bar(image_label(results, key), v, kind_of(key), note))
        markers: tuple[Marker, ...] = ()
        if cmd in with_target and ratio is not None and ref:
            markers = (Marker(ratio * ref, f"target: <= {_num(ratio, 2)}x reference"),)
        shown = commands.get(cmd, cmd)
        out.append(Chart(f"startup-{cmd}", f"Start-up: {shown}", "ms", tuple(bars),
                         subtitle="median ms inside a fresh read-only container (uid 10001); "
                                  "shorter is better",
                         markers=markers))
    return out


def _speed_charts(results: dict[str, Any]) -> list[Chart]:
    imgs = _get(results, "speed", "images")
    if not isinstance(imgs, dict) or not imgs:
        return []
    bars = []
    for key in _ordered(imgs):
        python = _get(imgs, key, "python")  # "3.13.15 (pyperf 2.11.0)"
        bars.append(Bar(image_label(results, key),
                        _num_or_none(_get(imgs, key, "geomean_relative_to_reference")), kind_of(key),
                        f"(Python {str(python).split(' (')[0]})" if python else ""))
    target = _num_or_none(_get(results, "targets", "speed_geomean"))
    markers = (Marker(target, f"target: >= {_num(target, 1)}x reference"),) if target is not None else ()
    return [Chart("speed", "Interpreter speed against the official recipe", "x", tuple(bars),
                  subtitle="geometric mean of reference time / image time over the pyperf workloads; "
                           "longer is faster",
                  digits=2, markers=markers)]


REBUILD_STEPS = (("cold", "cold build"), ("noop", "no-op rebuild"), ("refresh", "security refresh"),
                 ("nightly", "nightly, nothing new"))


def _rebuild_charts(results: dict[str, Any]) -> list[Chart]:
    rb = results.get("rebuild")
    if not isinstance(rb, dict):
        return []
    bars = []
    for key, label in REBUILD_STEPS:
        step = rb.get(key)
        if not isinstance(step, dict):
            continue
        notes = []
        r = _num_or_none(step.get("ratio_to_cold"))
        target = _num_or_none(_get(results, "targets", f"{key}_ratio"))
        if r is not None:
            notes.append(f"{r:.3f}x cold" + (f", target <= {target}x" if target is not None else ""))
        if isinstance(step.get("compiles"), list):
            n = len(step["compiles"])
            notes.append(f"{n} compile{'' if n == 1 else 's'}")
        bars.append(Bar(label, _num_or_none(step.get("seconds")), "step",
                        f"({', '.join(notes)})" if notes else ""))
    if not bars:
        return []
    return [Chart("rebuild", "Rebuild cost of the e2e matrix", "s", tuple(bars),
                  subtitle="wall seconds; CPython compiles in brackets; shorter is better")]


def charts_from_results(results: dict[str, Any]) -> list[Chart]:
    """One chart per figure results.json holds (a section that was not measured has none)."""
    return [*_size_charts(results), *_startup_charts(results), *_speed_charts(results),
            *_rebuild_charts(results)]


def markdown_links(results: dict[str, Any]) -> list[str]:
    """The markdown lines that embed the charts (relative to results.md)."""
    return [f"![{c.title.replace('[', '(').replace(']', ')')}]({CHARTS_DIR}/{c.filename})"
            for c in charts_from_results(results)]


KNOWN = ("size", "size-compressed", "speed", "rebuild", *(f"startup-{c}" for c in STARTUP_ORDER))


def write_charts(results: dict[str, Any], directory: Path) -> list[Path]:
    """Write every chart into ``directory``; a known chart that results no longer hold is
    removed, so results.md never links a stale picture. Returns the files written."""
    charts = charts_from_results(results)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in charts:
        path = directory / chart.filename
        text = render_svg(chart)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    names = {c.filename for c in charts}
    for stem in KNOWN:
        stale = directory / f"{stem}.svg"
        if stale.name not in names and stale.exists():
            stale.unlink()
    return written


def charts_dir(json_path: Path) -> Path:
    return json_path.parent / CHARTS_DIR


def main(argv: list[str] | None = None) -> int:
    import json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, help="a results.json written by bench/run.py")
    p.add_argument("--no-markdown", action="store_true",
                   help="only the SVGs: leave the .md beside the JSON as it is")
    args = p.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
    except (OSError, ValueError) as exc:
        print(f"charts: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    written = write_charts(results, charts_dir(args.results))
    for path in written:
        print(path)
    if not args.no_markdown:
        from results_md import render_markdown

        md = args.results.with_suffix(".md")
        md.write_text(render_markdown(results))
        print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
