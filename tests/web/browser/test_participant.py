"""A participant's pages in a real browser (Debian's Chromium), on a 360 px phone and on a
desktop: consent, half the SCS, leave, resume from the link in a fresh browser, finish; the score
reaches the researcher. Every page passes axe-core (WCAG 2.0/2.1/2.2 A and AA) with large enough
targets and no sideways scrolling; one page is answered with the keyboard alone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from peerlens.instruments import score
from peerlens.study import (
    Caller,
    add_participant,
    create_study,
    derived_frame,
    export_frame,
    issue_link,
    set_consent_text,
    set_status,
)

from ...conftest import ADMIN, DATA
from .conftest import VIEWPORTS, Served
from .pages import check_page, open_page, questions

RESEARCHER = Caller("rita")


def _answer(page: Any, items: list[str], value: str) -> dict[str, str]:
    """Tap the label of answer ``value`` of each item (as a finger or a mouse would)."""
    for item in items:
        radio = page.locator(f"input[name='{item}'][value='{value}']")
        page.click(f"label[for='{radio.get_attribute('id')}']")
    return dict.fromkeys(items, value)


def _stored(served: Served, code: str) -> dict[str, str]:
    frame = export_frame(served.store, "pilot", tier="deidentified", caller=RESEARCHER)
    mine = frame[(frame["participant"] == code) & (frame["kind"] == "item")]
    return {
        r["name"]: r["missing_code"] if isinstance(r["missing_code"], str) else f"{r['value']:g}"
        for _, r in mine.iterrows()
    }


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_consent_half_the_scs_leave_resume_finish(
    served: Served, browser: Any, axe_source: str, viewport: str
) -> None:
    page = open_page(browser, viewport, axe_source)
    page.goto(served.link("A1"))
    expect(page.locator("h1")).to_have_text("Consent")
    check_page(page, "consent", viewport)
    page.get_by_role("button", name="I agree").click()

    expect(page.locator(".progress")).to_contain_text("Page 1 of 4")
    expect(page.locator(".note")).to_contain_text("stand-in wording")
    check_page(page, "page-1", viewport)
    given = _answer(page, questions(page), "4")
    page.get_by_role("button", name="Save and continue").click()

    expect(page.locator(".progress")).to_contain_text("Page 2 of 4")
    expect(page.get_by_role("status")).to_have_text("Your answers on page 1 are saved.")
    check_page(page, "page-2", viewport)
    # Half the SCS: page 1 saved; page 2 only partly answered when sent, so it shows why.
    second = questions(page)
    _answer(page, second[:4], "2")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Error: "))
    check_page(page, "page-2-error", viewport)
    first_problem = page.locator(".error-summary a").first
    first_problem.click()
    assert page.evaluate("document.activeElement.id") == f"{second[4]}-1"
    assert _stored(served, "A1") == given  # nothing of the page with a problem
    page.context.close()

    # Later, a fresh browser with only the link: back where they stopped, answers kept.
    page = open_page(browser, viewport, axe_source)
    page.goto(served.link("A1"))
    expect(page.locator(".progress")).to_contain_text("Page 2 of 4")
    expect(page.locator(".saved-pages")).to_contain_text("Saved so far: page 1 of 4")
    given |= _answer(page, questions(page), "2")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator(".progress")).to_contain_text("Page 3 of 4")
    check_page(page, "page-3", viewport)
    third = questions(page)
    given |= _answer(page, third[1:], "5")
    page.click(f"label[for='{third[0]}-skip']")  # prefer not to answer
    given[third[0]] = "-99"
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator(".progress")).to_contain_text("Page 4 of 4")
    check_page(page, "page-4", viewport)
    given |= _answer(page, questions(page), "1")
    page.get_by_role("button", name="Save and continue").click()

    expect(page.locator("h1")).to_have_text("Thank you")
    check_page(page, "done", viewport)
    page.get_by_role("link", name="Page 1: SCS (part 1 of 3)").click()
    assert page.locator(f"#{questions(page)[0]}-4").is_checked()  # shown again to review
    page.context.close()

    assert _stored(served, "A1") == given
    scores = derived_frame(served.store, "pilot", "scores", caller=RESEARCHER)
    mine = scores[scores["participant"] == "A1"].set_index("name")["value"]
    expected = score(pd.DataFrame([given]), ["scs", "phq9"], missing_codes=[-99]).iloc[0]
    assert mine["scs_total"] == pytest.approx(expected["scs_total"])
    assert mine["phq9_total"] == pytest.approx(expected["phq9_total"]) == 9


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_withdraw_refused_and_closed_pages(
    served: Served, browser: Any, axe_source: str, viewport: str
) -> None:
    page = open_page(browser, viewport, axe_source)
    page.goto(served.link("A2"))
    page.get_by_role("button", name="I agree").click()
    # The researcher sets a new consent version while page 1 is open: sending it asks again.
    set_consent_text(served.store, "pilot", "v2", "New wording.", caller=ADMIN)
    _answer(page, questions(page), "3")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator("h1")).to_have_text("Consent")
    expect(page.get_by_role("status")).to_contain_text("were not saved")
    check_page(page, "consent-again", viewport)
    page.get_by_role("button", name="I agree").click()
    expect(page.locator(".progress")).to_contain_text("Page 1 of 4")
    page.get_by_role("link", name="Stop taking part in the study").click()
    expect(page.locator("h1")).to_have_text("Stop taking part")
    check_page(page, "withdraw", viewport)
    page.get_by_role("button", name="Yes, withdraw me from the study").click()
    expect(page.locator("h1")).to_have_text("You have withdrawn from the study")
    check_page(page, "withdrawn", viewport)

    page.goto(served.url + "/p/A2/not-the-token")
    expect(page.locator("h1")).to_have_text("This link does not work")
    check_page(page, "refused", viewport)

    set_status(served.store, "pilot", "B1", "completed", caller=ADMIN)
    page.goto(served.link("B1"))
    expect(page.locator("h1")).to_have_text("This questionnaire is not open")
    check_page(page, "closed", viewport)

    page.goto(served.url + "/")
    check_page(page, "home", viewport)
    page.context.close()


def test_one_page_with_the_keyboard_alone(served: Served, browser: Any, axe_source: str) -> None:
    page = open_page(browser, "desktop", axe_source)
    page.goto(served.link("A1"))
    _tab_to(page, "BUTTON", "I agree")
    page.keyboard.press("Enter")
    page.wait_for_selector(".progress")
    items = questions(page)
    chosen: dict[str, str] = {}
    for k, item in enumerate(items):
        _tab_to(page, "INPUT", item)
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", "the focused answer shows no focus outline"
        for _ in range(k % 3):  # arrow keys move within the answers of one question
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Space")
        chosen[item] = page.evaluate("document.activeElement.value")
    _tab_to(page, "BUTTON", "Save and continue")
    page.keyboard.press("Enter")
    page.wait_for_selector("[role=status]")
    expect(page.locator(".progress")).to_contain_text("Page 2 of 4")
    page.context.close()
    assert _stored(served, "A1") == chosen
    assert len(set(chosen.values())) == 3


def _tab_to(page: Any, tag: str, name: str, most: int = 40) -> None:
    """Press Tab until the element of ``tag`` whose name attribute or text is ``name`` has
    the focus."""
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "[document.activeElement.tagName, document.activeElement.name || '',"
            " document.activeElement.textContent.trim()]"
        )
        if focused[0] == tag and name in (focused[1], focused[2]):
            return
    raise AssertionError(f"Tab never reached {tag} {name!r}")


def test_a_data_dictionary_form_with_typed_questions(
    served: Served, browser: Any, axe_source: str, tmp_path: Path
) -> None:
    """A REDCap-style form: typed answers (text, number, date, notes) with "prefer not to
    answer" beside them, yes/no options, and its error state; on the phone."""
    config = tmp_path / "rc.yaml"
    config.write_text(
        (DATA / "redcap_study.yaml").read_text(encoding="utf-8")
        + "missing_codes: [-99]\nconsent: {version: v1, text: I agree.}\n",
        encoding="utf-8",
    )
    (tmp_path / "redcap_dictionary.csv").write_bytes((DATA / "redcap_dictionary.csv").read_bytes())
    create_study(served.store, "rc", config, caller=ADMIN)
    add_participant(served.store, "rc", "R1", site="leeds", caller=ADMIN)
    token = issue_link(served.store, "rc", "R1", timepoint="baseline", caller=ADMIN).token
    page = open_page(browser, "phone", axe_source)
    page.goto(f"{served.url}/p/R1/{token}")
    page.get_by_role("button", name="I agree").click()
    expect(page.locator("h1")).to_have_text("Contact")
    check_page(page, "form-typed", "phone")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check_page(page, "form-typed-error", "phone")
    page.fill("#enrol_date-1", "2026-03-01")
    page.click("label[for='gender-3']")
    for k in range(1, 5):  # each "who supports you" option: No
        page.click(f"label[for='supports___{(1, 2, 3, 99)[k - 1]}-2']")
    page.click("label[for='age-skip']")
    page.fill("#comments-1", "Nothing more.")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("status")).to_have_text("Your answers on page 1 are saved.")
    page.context.close()
    frame = export_frame(served.store, "rc", tier="remove_identifiers", caller=ADMIN)
    mine = frame[(frame["participant"] == "R1") & (frame["kind"] == "item")].set_index("name")
    assert mine.loc["age", "missing_code"] == "-99"
    assert mine.loc["comments", "text"] == "Nothing more."
