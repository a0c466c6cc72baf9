"""Hygiene of the chapter notebooks: strict nbval only checks what was executed and stored."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
TOC = (ROOT / "_toc.yml").read_text()


def code_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_book_has_an_intro_and_the_toc_lists_every_chapter():
    assert (BOOK / "intro.md").is_file() and "root: book/intro" in TOC
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in TOC, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_code_cell_was_executed_in_order_without_errors(path):
    cells = code_cells(path)
    assert cells, f"{path.name} has no code"
    unrun = [i for i, c in enumerate(cells) if c.get("execution_count") is None]
    assert not unrun, f"{path.name}: code cells {unrun} have no execution count (strip nothing; execute the notebook)"
    errors = [i for i, c in enumerate(cells) if any(o["output_type"] == "error" for o in c.get("outputs", []))]
    assert not errors, f"{path.name}: stored errors in code cells {errors}"
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: not executed top to bottom in one kernel"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_chapter_starts_with_a_colab_safe_setup_cell(path):
    first = "".join(code_cells(path)[0]["source"])
    assert "find_spec(\"lenet_course\")" in first or "find_spec('lenet_course')" in first
    assert not re.search(r"pip install[^\n]*\btorch\b", first), "the set-up cell must never install torch"
