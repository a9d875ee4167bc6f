"""tools/report_screenshots.py: a section's shot is cropped to the section (or starts at its
named ``<h3>``), at most the height asked for; an unknown section or heading is named. Needs
the system Chromium (skips without it, fails when CI is set)."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from ._scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
PAGE = """<!doctype html><html><body style="margin:0">
<section id="a" style="width:600px;margin:0 0 0 20px">
<h2 style="margin:0;height:300px">A</h2><h3 style="margin:0;height:100px">Models fitted</h3>
<p style="margin:0;height:200px">text</p></section>
<div style="height:400px"></div></body></html>"""


def _tool() -> ModuleType:
    chromium = Path(os.environ.get("PEERLENS_CHROMIUM") or "/usr/bin/chromium")
    if not chromium.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Chromium is not at {chromium} (see .ci/run)")
        pytest.skip(f"Chromium is not at {chromium}")
    return load_script(ROOT / "tools" / "report_screenshots.py")


def test_shots_are_cropped_to_the_section_or_from_its_heading(tmp_path: Path) -> None:
    tool = _tool()
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    saved = tool.screenshot_sections(
        page, tmp_path / "out", [("a", 1600), ("a", 250), ("a/Models fitted", 1600)]
    )
    assert [p.name for p in saved] == ["a.png", "a.png", "a-models-fitted.png"]
    with Image.open(tmp_path / "out" / "a.png") as image:
        assert image.size == (616, 250)  # the section's width + 2 x 8 px; the height asked
    with Image.open(tmp_path / "out" / "a-models-fitted.png") as image:
        assert image.size == (616, 300)  # from the heading to the section's end
    assert tool.main([str(page), str(tmp_path / "x"), "a/Nope"]) == 2
    assert tool.main([str(page), str(tmp_path / "x"), "b"]) == 2
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").iterdir())
