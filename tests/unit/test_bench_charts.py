"""bench/charts.py (issue 34 item 5): SVG bar charts drawn from bench/results.json, embedded
by bench/results.md; the committed charts are the ones the committed results.json draws."""

from __future__ import annotations

import copy
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import REPO

sys.path.append(str(REPO / "bench"))  # bench/ holds scripts, not a package; appended: shadows nothing

import charts
import results_md

RESULTS = REPO / "bench" / "results.json"
SVG = "{http://www.w3.org/2000/svg}"
ALL = ["size", "size-compressed", "startup-pass", "startup-imports", "startup-pass-no-site", "speed",
       "rebuild"]


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RESULTS.read_text())
    return results


def _bars(svg: str) -> list[tuple[str, float]]:
    """(label, bar width) of each bar group of a rendered chart; width 0 when there is no bar."""
    out = []
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        texts = [t.text or "" for t in g.iter(f"{SVG}text")]
        rects = [float(r.attrib["width"]) for r in g.iter(f"{SVG}rect")]
        out.append((texts[0], rects[0] if rects else 0.0))
    return out


def test_bar_widths_are_proportional_to_the_values() -> None:
    chart = charts.Chart("t", "T", "MB", (charts.Bar("a", 10.0), charts.Bar("b", 20.0),
                                          charts.Bar("c", 40.0)))
    widths = dict(_bars(charts.render_svg(chart)))
    assert widths["c"] > 100
    assert widths["b"] == pytest.approx(widths["c"] / 2, abs=0.1)
    assert widths["a"] == pytest.approx(widths["c"] / 4, abs=0.1)
    # a marker beyond the largest bar sets the scale
    marked = charts.Chart("t", "T", "MB", chart.bars, markers=(charts.Marker(80.0, "target"),))
    assert dict(_bars(charts.render_svg(marked)))["c"] == pytest.approx(widths["c"] / 2, abs=0.1)


def test_bar_width_edges() -> None:
    assert charts.bar_width(5.0, 10.0, 300.0) == 150.0
    assert charts.bar_width(0.001, 10.0, 300.0) == 1.0  # a positive value still shows
    for value in (None, 0.0, -3.0, float("nan"), float("inf")):
        assert charts.bar_width(value, 10.0, 300.0) == 0.0
    assert charts.bar_width(5.0, 0.0, 300.0) == 0.0
    assert charts.bar_width(50.0, 10.0, 300.0) == 300.0  # never past the area


def test_an_unmeasured_value_says_so_and_draws_no_bar() -> None:
    chart = charts.Chart("t", "T", "ms", (charts.Bar("a", 3.0), charts.Bar("b", None)))
    svg = charts.render_svg(chart)
    assert dict(_bars(svg))["b"] == 0.0
    assert "not measured" in svg


def test_labels_and_titles_are_escaped_for_xml() -> None:
    nasty = 'a <b> & "c" \'d\''
    chart = charts.Chart("t", f"title {nasty}", "ms", (charts.Bar(nasty, 1.0, note=f"({nasty})"),),
                         subtitle=nasty, markers=(charts.Marker(0.5, nasty),))
    svg = charts.render_svg(chart)
    root = ET.fromstring(svg)  # well-formed
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert nasty in texts and f"title {nasty}" in texts
    assert f"1.0 ms ({nasty})" in texts
    assert "<b>" not in svg


def test_the_output_is_deterministic(committed: dict[str, Any], tmp_path: Path) -> None:
    first = [charts.render_svg(c) for c in charts.charts_from_results(committed)]
    again = [charts.render_svg(c) for c in charts.charts_from_results(copy.deepcopy(committed))]
    assert first == again
    charts.write_charts(committed, tmp_path / "a")
    charts.write_charts(committed, tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(f"{n}.svg" for n in ALL)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_chart_for_each_figure_present(committed: dict[str, Any]) -> None:
    assert [c.name for c in charts.charts_from_results(committed)] == ALL
    assert charts.charts_from_results({"meta": {}, "figures": []}) == []
    only_size = {k: v for k, v in committed.items() if k not in ("startup", "speed", "rebuild")}
    assert [c.name for c in charts.charts_from_results(only_size)] == ["size", "size-compressed"]
    no_size = {k: v for k, v in committed.items() if k != "size"}
    assert "size" not in [c.name for c in charts.charts_from_results(no_size)]


def test_the_charts_hold_the_figures_of_results_json(committed: dict[str, Any]) -> None:
    by_name = {c.name: c for c in charts.charts_from_results(committed)}
    size = {b.label: b for b in by_name["size"].bars}
    assert size["reference (official recipe)"].value == pytest.approx(
        committed["size"]["images"]["reference"]["disk_bytes"] / 1e6)
    assert size["reference (official recipe)"].kind == "reference"
    assert size["debian python3 (3.11)"].kind == "debian"
    assert size["ours runtime (release)"].kind == "ours"
    speed = {b.label: b.value for b in by_name["speed"].bars}
    assert speed["ours runtime (release)"] == committed["speed"]["images"]["release-runtime"][
        "geomean_relative_to_reference"]
    assert [m.value for m in by_name["speed"].markers] == [committed["targets"]["speed_geomean"]]
    ref_pass = committed["startup"]["images"]["reference"]["pass"]["median_ms"]
    assert [m.value for m in by_name["startup-pass"].markers] == [pytest.approx(0.5 * ref_pass)]
    assert by_name["startup-pass-no-site"].markers == ()  # no target for the diagnostic command
    rebuild = {b.label: b for b in by_name["rebuild"].bars}
    assert rebuild["cold build"].value == committed["rebuild"]["cold"]["seconds"]
    assert "0.200x cold" in rebuild["security refresh"].note


def test_a_chart_that_results_no_longer_hold_is_removed(committed: dict[str, Any], tmp_path: Path) -> None:
    charts.write_charts(committed, tmp_path)
    (tmp_path / "unrelated.svg").write_text("<svg/>")
    only_size = {k: v for k, v in committed.items() if k != "speed"}
    charts.write_charts(only_size, tmp_path)
    assert not (tmp_path / "speed.svg").exists()
    assert (tmp_path / "size.svg").exists() and (tmp_path / "unrelated.svg").exists()


def test_results_md_embeds_the_charts_with_relative_links(committed: dict[str, Any]) -> None:
    md = results_md.render_markdown(committed)
    links = re.findall(r"!\[[^\]]*\]\((charts/[^)]+\.svg)\)", md)
    assert links == [f"charts/{n}.svg" for n in ALL]
    assert md.index("## Charts") < md.index("## Figures and targets")
    bare = {"meta": committed["meta"], "figures": [], "errors": {}}
    assert "## Charts" not in results_md.render_markdown(bare)


def test_the_committed_charts_and_results_md_are_current(committed: dict[str, Any]) -> None:
    """bench/charts/*.svg and bench/results.md are what the committed results.json draws
    (`python bench/charts.py bench/results.json` redraws them)."""
    md = (REPO / "bench" / "results.md").read_text()
    assert md == results_md.render_markdown(committed)
    for chart in charts.charts_from_results(committed):
        path = REPO / "bench" / "charts" / chart.filename
        assert path.read_text() == charts.render_svg(chart), f"{path} is stale"
        assert f"(charts/{chart.filename})" in md


def test_the_command_redraws_from_an_existing_results_json(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    results.write_text(RESULTS.read_text())
    assert charts.main([str(results), "--no-markdown"]) == 0
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == sorted(f"{n}.svg" for n in ALL)
    assert not (tmp_path / "results.md").exists()
    assert charts.main([str(results)]) == 0
    assert "](charts/size.svg)" in (tmp_path / "results.md").read_text()
    assert charts.main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bench_run_draws_the_charts_when_it_renders(tmp_path: Path) -> None:
    import run as bench_run  # bench/run.py: rerender is what save() does, without measuring

    results = tmp_path / "results.json"
    results.write_text(RESULTS.read_text())
    assert bench_run.rerender(results) == 0
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == sorted(f"{n}.svg" for n in ALL)
    assert "](charts/speed.svg)" in (tmp_path / "results.md").read_text()
