"""The browser checks themselves find what they look for (so a passing page means something)."""

from __future__ import annotations

from typing import Any

import pytest

from .pages import axe_violations, check_page, open_page

BAD = """<!doctype html><html><head><title>bad</title></head><body><main>
<img src="x.png"><p style="color:#ccc">faint text</p>
<button style="width:16px;height:16px;padding:0"></button>
<div style="width:600px">wide</div></main></body></html>"""
GOOD = """<!doctype html><html lang="en"><head><title>good</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>
<h1>Fine</h1><p>Plain text, <a href="#x">a link within a sentence</a>, nothing else.</p>
<button style="width:48px;height:48px">OK</button></main></body></html>"""


def test_axe_and_the_target_and_width_checks_catch_a_bad_page(
    browser: Any, axe_source: str
) -> None:
    page = open_page(browser, "phone", axe_source)
    page.set_content(BAD)
    found = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "html-has-lang", "color-contrast", "button-name"} <= found
    page.set_content(GOOD)
    check_page(page, "checker-good", "phone")
    for broken, why in (
        (BAD, "axe-core"),
        (GOOD.replace("48px", "16px"), "targets under 24 px"),
        (GOOD.replace("<h1>", '<h1 style="width:500px">'), "scrolls sideways"),
    ):
        page.set_content(broken)
        with pytest.raises(AssertionError, match=why):
            check_page(page, "checker-bad", "phone")
    page.context.close()
