"""The study team's and the story studio's pages in a real browser (Debian's Chromium), on a
360 px phone and on a desktop: a researcher signs in, imports a REDCap project (data dictionary,
then records) and an ECG recording, derives and sees the HRV windows, and downloads the
de-identified export, which holds no identifying field. Every page of the app (enumerated from
its routes: a page route that is not opened here fails), the import page with and without
problems, a token just made and the "Not found" page pass axe-core (WCAG 2.0/2.1/2.2 A and AA)
with large enough targets and no sideways scrolling."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from peerlens.study import (
    Caller,
    Store,
    add_participant,
    add_recording,
    create_study,
    create_token,
    derive,
    derived_frame,
    get_identity,
    grant_studio_access,
    save_story,
)

from ...conftest import ACTOR, ADMIN, DATA, PASSWORD, make_user
from ..conftest import walk_routes
from .conftest import VIEWPORTS, Served
from .pages import check_page, docs_screenshot, open_page

EXAMPLES = Path(__file__).resolve().parents[3] / "src" / "peerlens" / "examples"
#: What the REDCap project's records hold that identifies someone (identifier fields, free
#: text), none of which may reach the de-identified tier.
IDENTIFYING = ("Ana Ruiz", "1990-04-12", "Prefers texts", "feeling stuck")


def _sign_in(page: Any, served: Served, username: str, viewport: str, *, check: bool) -> None:
    page.goto(served.url + "/login")
    if check:
        check_page(page, "staff-login", viewport)
        if viewport == "desktop":
            docs_screenshot(page, "staff-login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Studies")


def _redcap_project(served: Served, folder: Path) -> None:
    """A REDCap-managed study (its design and data dictionary as in tests/study/data), with a
    study-wide researcher ``rex`` who may export up to the de-identified tier."""
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, folder / name)
    create_study(served.store, "rc", folder / "redcap_study.yaml", caller=ADMIN)
    make_user(served.store, "rex", "researcher", study="rc", tier="deidentified")


def _upload(page: Any, form: str, files: list[Path] | Path, button: str) -> None:
    page.set_input_files(f"#{form}", files)
    page.get_by_role("button", name=button).click()


def _sent_by_the_script(page: Any, study: str) -> None:
    """The upload went through upload-progress.js (XMLHttpRequest, then the answer shown in
    place): the address is still the import page's, not the form's action."""
    expect(page).to_have_url(re.compile(rf"/studies/{study}/import$"))


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_researcher_imports_a_redcap_project_and_an_ecg_sees_hrv_and_exports(
    served: Served, browser: Any, axe_source: str, viewport: str, tmp_path: Path
) -> None:
    _redcap_project(served, tmp_path)
    desktop = viewport == "desktop"
    page = open_page(browser, viewport, axe_source)
    _sign_in(page, served, "rex", viewport, check=True)
    check_page(page, "staff-studies", viewport)
    page.get_by_role("link", name="REDCap-managed peer support pilot").click()
    page.get_by_role("link", name="Import data").click()
    expect(page.locator("h1")).to_have_text("Import into REDCap-managed peer support pilot")
    check_page(page, "staff-import", viewport)
    if desktop:
        docs_screenshot(page, "staff-import")

    # The data dictionary, then the records: first sent without enrolling the record ids,
    # which the import refuses (every problem listed by row and column, nothing stored).
    _upload(page, "dictionary-file", DATA / "redcap_dictionary.csv", "Import the data dictionary")
    expect(page.locator("#dictionary-done")).to_contain_text("field(s) defined")
    _sent_by_the_script(page, "rc")
    _upload(page, "redcap-file", DATA / "redcap_records.csv", "Import the records")
    expect(page.get_by_role("alert")).to_contain_text("redcap_records.csv")
    expect(page).to_have_title(re.compile(r"^Error: Import"))
    check_page(page, "staff-import-error", viewport)
    if desktop:
        docs_screenshot(page, "staff-import-error")
    page.click("label[for='redcap-create']")
    _upload(page, "redcap-file", DATA / "redcap_records.csv", "Import the records")
    expect(page.locator("#redcap-done")).to_contain_text("redcap_records.csv: 6 row(s)")
    _sent_by_the_script(page, "rc")
    assert get_identity(served.store, "rc", "1", caller=ADMIN)["name"] == "Ana Ruiz"

    # The bundled example ECG for record 1, with the example session's windows.
    events = pd.read_csv(EXAMPLES / "session_events.csv")
    windows = "\n".join(f"{r.label}:{r.start}:{r.end}" for r in events.itertuples())
    page.fill("#recording-participant", "1")
    page.fill("#recording-windows", windows)
    _upload(page, "recording-files", EXAMPLES / "session_ecg.edf", "Store the recording")
    expect(page.locator("#recording-done")).to_contain_text("session_ecg.edf: stored as recording")
    _sent_by_the_script(page, "rc")
    check_page(page, "staff-import-done", viewport)

    page.get_by_role("link", name="HRV page").click()
    expect(page.locator(".note")).to_contain_text("1 recording(s) not analysed")
    page.get_by_role("button", name="Derive the HRV results now").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    check_page(page, "staff-hrv", viewport)
    if desktop:
        docs_screenshot(page, "staff-hrv")
    page.locator("tbody th a").click()
    for label in ("whole", *events["label"]):
        expect(page.locator(f"tbody th:text-is('{label}')")).to_have_count(1)
    expect(page.locator("svg.plot, figure svg").first).to_be_visible()
    check_page(page, "staff-recording", viewport)
    if desktop:
        docs_screenshot(page, "staff-recording")

    # The de-identified export, as a download: no identifier field, no free text, no value
    # that names anyone.
    page.goto(f"{served.url}/studies/rc/export")
    check_page(page, "staff-export", viewport)
    if desktop:
        docs_screenshot(page, "staff-export")
    for kind in ("redcap-csv", "tidy-csv"):
        page.select_option("#tier", "deidentified")
        page.select_option("#format", kind)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download").click()
        download = info.value
        assert download.suggested_filename == "rc-deidentified.csv"
        content = Path(download.path()).read_text(encoding="utf-8")
        frame = pd.read_csv(io.StringIO(content), dtype=str, keep_default_na=False)
        assert len(frame) > 0, kind
        for value in IDENTIFYING:
            assert value not in content, (kind, value)
        if kind == "redcap-csv":
            assert not {"name", "dob", "comments", "sess_notes"} & set(frame.columns)
            assert set(frame["record_id"]) == {"1", "2", "3"}
        else:
            assert not {"name", "dob", "comments", "sess_notes"} & set(frame["name"])
    page.context.close()


def test_an_import_without_javascript_shows_its_problems(
    served: Served, browser: Any, axe_source: str, tmp_path: Path
) -> None:
    """The forms work without the progress script: posted by the browser, answered with the
    page and the problem next to the form."""
    bad = tmp_path / "week1.csv"
    bad.write_text("participant,phq9_1\nA1,7\n", encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORTS["phone"], java_script_enabled=False)
    page = context.new_page()
    _sign_in(page, served, ACTOR, "phone", check=False)
    page.goto(served.url + "/studies/pilot/import")
    page.select_option("#responses-timepoint", "baseline")
    _upload(page, "responses-file", bad, "Import responses")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("week1.csv")
    expect(alert).to_contain_text("row 1, column 'phq9_1'")
    expect(page).to_have_url(re.compile(r"/studies/pilot/import/responses$"))  # posted plainly
    context.close()


def _studio_worker(served: Served) -> int:
    """PS worker W1 (Leeds) with an account ``wendy`` and one practice story."""
    add_participant(served.store, "pilot", "W1", site="leeds", role="ps_worker", caller=ADMIN)
    make_user(served.store, "wendy", "ps_worker", study="pilot", site="leeds")
    grant_studio_access(served.store, "pilot", "W1", "wendy", relation="worker", caller=ADMIN)
    return save_story(
        served.store,
        "pilot",
        "I felt alone at first. Then I met people who had been through the same. "
        "They seemed to cope far better than me.",
        told_on=dt.date(2026, 3, 2),
        caller=Caller("wendy"),
    )


#: Every page of the app, by its GET route, and the name its screenshots are saved under: the
#: test below opens each (an admin signed in; a participant's link), so a page route missing
#: here fails :func:`test_every_page_route_is_checked_in_the_browser`.
PAGES: dict[str, str] = {
    "/": "home",
    "/login": "staff-login-signed-in",
    "/studies": "staff-admin-studies",
    "/studies/{study}": "staff-study",
    "/studies/{study}/import": "staff-admin-import",
    "/studies/{study}/hrv": "staff-admin-hrv",
    "/studies/{study}/hrv/{participant}/{recording}": "staff-admin-recording",
    "/studies/{study}/export": "staff-admin-export",
    "/users": "staff-users",
    "/users/tokens": "staff-all-tokens",
    "/audit": "staff-audit",
    "/audit/log": "staff-audit-log",
    "/tokens": "staff-tokens",
    "/studio": "studio-start",
    "/studio/{study}": "studio-researcher",
    "/studio/{study}/workers/{code}": "studio-worker-as-admin",
    "/studio/{study}/stories/{story_id}": "studio-story-as-admin",
    # A participant's link (tests/web/browser/test_participant.py walks them through it too):
    # consent, agreed to before the pages are opened.
    "/p/{code}/{token}": "participant-consent",
    "/p/{code}/{token}/page/{number}": "participant-page-1",
    "/p/{code}/{token}/withdraw": "participant-withdraw",
}


def page_routes(app: Any) -> set[str]:
    """The paths of every GET route of the app outside its mounts (the JSON API, static
    files): each answers with a page."""
    from fastapi.routing import APIRoute

    return {
        prefix + route.path
        for prefix, route in walk_routes(app.routes)
        if isinstance(route, APIRoute) and "GET" in route.methods
    }


def test_every_page_route_is_checked_in_the_browser(store: Store) -> None:
    from peerlens.web import WebSettings, create_app

    app = create_app(store, WebSettings(secret=b"route listing only"))
    assert page_routes(app) == set(PAGES)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_staff_and_studio_page_passes_axe(
    served: Served,
    browser: Any,
    axe_source: str,
    viewport: str,
    tmp_path: Path,
    visit_config_path: Path,
) -> None:
    # A second study, so that /studio lists them rather than leading straight into the one.
    create_study(served.store, "second", visit_config_path, caller=ADMIN)
    story = _studio_worker(served)
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(f"{800 + 40 * ((i % 7) - 3)}" for i in range(300)) + "\n")
    add_recording(served.store, "pilot", rr, participant="A1", kind="rr", caller=ADMIN)
    derive(served.store, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    recording = str(derived_frame(served.store, "pilot", "hrv", caller=ADMIN)["recording"].iloc[0])
    create_token(served.store, "nightly sync", scopes=["read"], caller=Caller("rita"))
    desktop = viewport == "desktop"
    staff = {
        "study": "pilot",
        "participant": "A1",
        "recording": recording,
        "code": "W1",
        "story_id": str(story),
    }
    code, token = served.links["A2"].split("/")[2:4]
    participant = {"code": code, "token": token, "number": "1"}

    page = open_page(browser, viewport, axe_source)
    _sign_in(page, served, ACTOR, viewport, check=False)
    for route, name in PAGES.items():
        address = route.format(**(participant if route.startswith("/p/") else staff))
        page.goto(served.url + address)
        expect(page).to_have_url(served.url + address)  # that page, not one it leads on to
        expect(page.locator("h1")).to_have_count(1)
        check_page(page, name, viewport)
        if desktop and name in ("staff-study", "staff-users", "staff-audit"):
            docs_screenshot(page, name)
        if route == "/p/{code}/{token}":
            page.get_by_role("button", name="I agree").click()
            expect(page.locator("h1")).not_to_have_text(re.compile("consent", re.I))
    # Pages answered to a form or an error: a token just made (shown once), not found.
    page.goto(served.url + "/tokens")
    page.fill("#token-name", "weekly export")
    page.click("label[for='scope-read']")
    page.get_by_role("button", name="Make the token").click()
    expect(page.locator("#token-value")).to_have_value(re.compile("^plk_"))
    check_page(page, "staff-token-made", viewport)
    page.goto(served.url + "/studies/no-such-study")
    expect(page.locator("h1")).to_have_text("Not found")
    check_page(page, "staff-not-found", viewport)
    page.get_by_role("button", name=re.compile("^Sign out")).click()
    page.context.close()

    page = open_page(browser, viewport, axe_source)
    _sign_in(page, served, "wendy", viewport, check=False)
    for name, path in (
        ("studio-own", "/studio/pilot"),
        ("studio-own-story", f"/studio/pilot/stories/{story}"),
    ):
        page.goto(served.url + path)
        check_page(page, name, viewport)
        if desktop:
            docs_screenshot(page, name)
    page.context.close()
