"""The README is a front page (issue 34): short, the two commands first, a quick start without
root or Docker, and every link inside the repository (to a file that exists)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.helpers import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_the_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 160
    first = "\n".join(lines[:20])
    assert "make demo" in first and "make test" in first
    assert "127.0.0.1:5000" in first and "containerd" in first  # what provisioning changes
    assert "make install test-unit" in README.read_text()
    assert len(list(DOCS.glob("*.md"))) >= 4


def test_every_link_stays_in_the_repository_and_finds_its_file() -> None:
    root = REPO.resolve()
    for page in _pages():
        for target in LINK.findall(page.read_text()):
            assert not re.match(r"[a-z]+:", target), f"{page.name}: {target} leaves the repository"
            path = target.split("#", 1)[0]
            if not path:
                continue
            found = (page.parent / path).resolve()
            assert found.is_relative_to(root), f"{page.name}: {target} leaves the repository"
            assert found.exists(), f"{page.name}: {target} does not exist"


def test_the_readme_links_every_docs_page() -> None:
    text = README.read_text()
    assert [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in text] == []
