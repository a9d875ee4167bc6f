"""What every participant page is checked for in the browser: axe-core's WCAG 2.0/2.1/2.2 A and
AA rules (0 violations), touch targets of at least 24 by 24 CSS px (WCAG 2.2, 2.5.8), no
horizontal scrolling; and a screenshot of it for the docs."""

from __future__ import annotations

import json
from typing import Any

from .conftest import DOCS_SCREENSHOTS, SCREENSHOTS, TAKE_DOCS_SCREENSHOTS, VIEWPORTS

#: axe-core's tags of the WCAG 2.0, 2.1 and 2.2 success criteria at levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

#: The smallest target WCAG 2.2's 2.5.8 (Target Size, Minimum) allows, in CSS px.
MIN_TARGET = 24

_TARGETS_JS = """
(least) => {
  const small = [];
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, label';
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    // 2.5.8's "inline" exception: a link within a sentence of other text.
    if (el.tagName === 'A' && el.parentElement.textContent.trim() !== el.textContent.trim()) {
      continue;
    }
    if (r.width < least || r.height < least) {
      small.push(`${el.tagName.toLowerCase()}#${el.id} "${el.textContent.trim().slice(0, 40)}"`
        + ` ${r.width.toFixed(1)}x${r.height.toFixed(1)}`);
    }
  }
  return small;
}
"""


def open_page(browser: Any, viewport: str, axe_source: str) -> Any:
    """A page in a fresh browser context (no cookies, nothing cached) of ``viewport``, with
    axe-core loaded into every document (through the DevTools protocol, so the pages' CSP,
    which forbids inline script, stays enforced)."""
    context = browser.new_context(
        viewport=VIEWPORTS[viewport],
        is_mobile=viewport == "phone",
        has_touch=viewport == "phone",
    )
    context.add_init_script(script=axe_source)
    return context.new_page()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of the WCAG A and AA rules on the page as shown."""
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def readable(violations: list[dict[str, Any]]) -> str:
    """The violations as lines a person can act on: rule, impact, help, and each element."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"]:
            lines.append(f"    {json.dumps(node['target'])}: {node['failureSummary']}")
    return "\n".join(lines)


def check_page(page: Any, name: str, viewport: str) -> None:
    """Assert the page as shown passes axe-core (WCAG 2.0/2.1/2.2 A and AA), has no target
    smaller than 24 by 24 px and does not scroll sideways; save its screenshots as
    ``<name>-<viewport>.png`` (the screen as first seen) and ``<name>-<viewport>-full.png``."""
    page.wait_for_load_state("load")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport}.png"))  # as first seen
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport}-full.png"), full_page=True)
    violations = axe_violations(page)
    assert not violations, f"axe-core on {name} ({viewport}):\n{readable(violations)}"
    small = page.evaluate(_TARGETS_JS, MIN_TARGET)
    assert not small, f"targets under {MIN_TARGET} px on {name} ({viewport}): {small}"
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{name} ({viewport}) scrolls sideways: {widths}"


def questions(page: Any) -> list[str]:
    """The items asked on the page shown, in order."""
    names: list[str] = page.eval_on_selector_all(
        "input[type=radio]", "els => [...new Set(els.map(e => e.name))]"
    )
    return names


def docs_screenshot(page: Any, name: str) -> None:
    """Save the page as first seen as ``docs/img/web/<name>.png`` when
    ``PEERLENS_DOCS_SCREENSHOTS=1`` (the images docs/web.md shows); else nothing."""
    if TAKE_DOCS_SCREENSHOTS:
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"))
