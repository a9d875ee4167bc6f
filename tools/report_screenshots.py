"""Screenshots of study report sections for docs/analysis.md (headless system Chromium).

Usage::

    peerlens demo --no-serve            # writes demo-out/report.html
    python tools/report_screenshots.py demo-out/report.html docs/img/report \\
        hrv:1800 graph models:1400 "methods/Models fitted:1400"

Each ``SECTION[:MAX_HEIGHT]`` is the id of a ``<section>`` of the page; its top part (at most
``MAX_HEIGHT`` CSS pixels, default 1600) is saved as ``<folder>/<section>.png`` at a 900 px wide
viewport. ``SECTION/HEADING[:MAX_HEIGHT]`` starts instead at the section's ``<h3>`` whose text is
HEADING (e.g. ``"methods/Models fitted"``, saved as ``methods-models-fitted.png``). Images are
reduced to a 64-colour palette (text and tables on white: a third of the size, no visible change).
Chromium is ``PEERLENS_CHROMIUM`` (default ``/usr/bin/chromium``), driven by Playwright as the
browser tests do. Exits 2 naming what is wrong (no page, no such section, no Chromium).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WIDTH = 900
DEFAULT_HEIGHT = 1600


def screenshot_sections(page_file: Path, out: Path, sections: list[tuple[str, int]]) -> list[Path]:
    """Save each section's top ``height`` pixels of ``page_file`` as ``out/<id>.png`` (from its
    ``<h3>`` named after a ``/`` in ``id``: ``out/<id>-<heading slug>.png``)."""
    from playwright.sync_api import FloatRect, sync_playwright

    chromium = Path(os.environ.get("PEERLENS_CHROMIUM") or "/usr/bin/chromium")
    if not chromium.is_file():
        raise SystemExit(f"Chromium not found at {chromium} (set PEERLENS_CHROMIUM)")
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium))
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            page.goto(page_file.resolve().as_uri())
            for spec, height in sections:
                key, _, heading = spec.partition("/")
                section = page.locator(f"section#{key}")
                # Counted first: bounding_box() waits 30 s for an element that is not there.
                box = section.bounding_box() if section.count() else None
                if box is None:
                    raise SystemExit(f"{page_file}: no section with id {key!r}")
                top, name = box["y"], key
                if heading:
                    start = page.locator(f"section#{key} h3", has_text=heading).first
                    if not start.count() or (found := start.bounding_box()) is None:
                        raise SystemExit(f"{page_file}: section {key!r} has no heading {heading!r}")
                    top = found["y"]
                    name = f"{key}-{'-'.join(heading.lower().split())}"
                clip: FloatRect = {
                    "x": box["x"] - 8,
                    "y": top,
                    "width": box["width"] + 16,
                    "height": min(box["y"] + box["height"] - top, height),
                }
                target = out / f"{name}.png"
                page.screenshot(path=str(target), clip=clip, full_page=True)
                _quantize(target)
                saved.append(target)
        finally:
            browser.close()
    return saved


def _quantize(path: Path, colours: int = 64) -> None:
    """Rewrite the PNG at ``path`` with an adaptive palette of ``colours`` colours."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=colours)
    small.save(path, optimize=True)


def main(argv: list[str]) -> int:
    """Command line: PAGE FOLDER SECTION[:MAX_HEIGHT]..."""
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    page_file, out = Path(argv[0]), Path(argv[1])
    if not page_file.is_file():
        print(f"{page_file}: no such report page", file=sys.stderr)
        return 2
    sections = []
    for arg in argv[2:]:
        key, _, height = arg.partition(":")
        if height and not height.isdigit():
            print(f"{arg}: the height after ':' must be a whole number of pixels", file=sys.stderr)
            return 2
        sections.append((key, int(height) if height else DEFAULT_HEIGHT))
    try:
        for path in screenshot_sections(page_file, out, sections):
            print(f"{path}: {path.stat().st_size // 1024} KiB")
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
