"""A participant's pages over HTTP: consent, pages saved and resumed, validation, refusals,
CSRF, escaping, withdrawal; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select

from peerlens.instruments import score
from peerlens.study import (
    Store,
    add_participant,
    audit_frame,
    create_study,
    derived_frame,
    export_frame,
    issue_link,
    revoke_links,
    set_consent_text,
    verify_audit,
)
from peerlens.study.models import AuditLog, Consent, Response, ResponseItem
from peerlens.web import create_app

from ...conftest import DATA
from ..conftest import ADMIN, Site, csrf_of


def _questions(page_html: str) -> list[str]:
    """The item names asked on a page, in order."""
    return list(dict.fromkeys(re.findall(r'type="radio" id="[^"]+" name="([^"]+)"', page_html)))


def _consent(site: Site, code: str = "A1") -> str:
    first = site.client.get(site.links[code])
    assert first.status_code == 200 and "<h1>Consent</h1>" in first.text
    done = site.client.post(
        f"{site.links[code]}/consent", data={"csrf": csrf_of(first.text), "version": "v1"}
    )
    assert done.status_code == 200  # followed the redirect to the first page
    return done.text


def _count(store: Store, model: type) -> int:
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _items(store: Store, code: str) -> dict[str, str]:
    frame = export_frame(store, "pilot", tier="deidentified", caller=ADMIN)
    items = frame[(frame["participant"] == code) & (frame["kind"] == "item")]
    return {
        r["name"]: r["missing_code"] if isinstance(r["missing_code"], str) else f"{r['value']:g}"
        for _, r in items.iterrows()
    }


def test_answer_half_leave_resume_finish_and_score(site: Site) -> None:
    page = _consent(site)
    assert "Page 1 of 4" in page and "stand-in wording" in page
    given: dict[str, str] = {}
    for number, value in ((1, "4"), (2, "2")):
        answers = dict.fromkeys(_questions(page), value)
        saved = site.client.post(
            f"{site.links['A1']}/page/{number}", data={"csrf": csrf_of(page), **answers}
        )
        assert saved.status_code == 200 and f"Page {number + 1} of 4" in saved.text
        assert f"Your answers on page {number} are saved." in saved.text
        given |= answers
        page = saved.text
    # Leave, and come back later on another device: a fresh client with only the link.
    with TestClient(site.client.app) as other:
        again = other.get(site.links["A1"])
    assert again.status_code == 200 and "Page 3 of 4" in again.text
    assert "Saved so far: pages 1, 2 of 4" in again.text
    back = site.client.get(f"{site.links['A1']}/page/1")
    for item, value in given.items():
        if item in _questions(back.text):
            assert re.search(rf'name="{item}" value="{value}" checked', back.text)
    third = dict.fromkeys(_questions(again.text), "5")
    skip = next(i for i in third if f'id="{i}-skip"' in again.text)
    third[skip] = "-99"  # prefer not to answer
    last = site.client.post(
        f"{site.links['A1']}/page/3", data={"csrf": csrf_of(again.text), **third}
    )
    given |= third
    assert "Page 4 of 4" in last.text
    phq = dict.fromkeys(_questions(last.text), "1")
    done = site.client.post(f"{site.links['A1']}/page/4", data={"csrf": csrf_of(last.text), **phq})
    given |= phq
    assert done.status_code == 200 and "<h1>Thank you</h1>" in done.text
    assert _items(site.store, "A1") == given
    scores = derived_frame(site.store, "pilot", "scores", caller=ADMIN)
    mine = scores[scores["participant"] == "A1"].set_index("name")["value"]
    expected = score(pd.DataFrame([given]), ["scs", "phq9"], missing_codes=[-99]).iloc[0]
    assert mine["scs_total"] == pytest.approx(expected["scs_total"])
    assert mine["phq9_total"] == pytest.approx(expected["phq9_total"]) == 9
    assert verify_audit(site.store, caller=ADMIN).ok


def test_a_validation_error_shows_by_the_item_and_stores_nothing(site: Site) -> None:
    page = _consent(site)
    items = _questions(page)
    answers = dict.fromkeys(items, "3")
    answers[items[1]] = "9"  # outside 1..5
    del answers[items[4]]  # unanswered
    answers[items[6]] = "<script>alert(1)</script>"
    bad = site.client.post(f"{site.links['A1']}/page/1", data={"csrf": csrf_of(page), **answers})
    assert bad.status_code == 422
    assert "nothing on this page was saved" in bad.text
    for item in (items[1], items[4], items[6]):
        assert f'aria-describedby="{item}-error"' in bad.text
        assert f'id="{item}-error"' in bad.text and f'href="#{item}-1"' in bad.text
    assert f'aria-describedby="{items[0]}-error"' not in bad.text
    summary = bad.text[bad.text.index('class="error-summary"') : bad.text.index("<form")]
    assert re.findall(r"Question (\d+):", summary) == ["2", "5", "7"]  # as numbered on the page
    assert "<script>" not in bad.text
    assert re.search(rf'name="{items[0]}" value="3" checked', bad.text)  # kept on the page
    assert _count(site.store, Response) == 0 and _count(site.store, ResponseItem) == 0


@pytest.mark.parametrize("case", ["other", "revoked", "expired", "garbage", "unknown-code"])
def test_every_bad_link_gets_the_same_refusal_and_stores_nothing(site: Site, case: str) -> None:
    _consent(site, "B2")
    good = site.client.get(site.links["B2"])
    csrf = csrf_of(good.text)
    answers = dict.fromkeys(_questions(good.text), "3")
    path = site.links["B2"]
    if case == "other":  # A's token under B's address
        path = f"/p/B2/{site.tokens['A1']}"
    elif case == "revoked":
        revoke_links(site.store, "pilot", "B2", caller=ADMIN)
    elif case == "expired":
        import datetime as dt

        from peerlens.study.models import ParticipantLink

        with site.store.transaction() as s:
            for link in s.scalars(select(ParticipantLink)):
                link.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    elif case == "garbage":
        path = "/p/B2/not-a-token%00%3Cscript%3E"
    else:
        path = f"/p/ZZ9/{site.tokens['B2']}"
    before = (_count(site.store, Response), _count(site.store, Consent))
    pages = [
        site.client.get(path),
        site.client.get(f"{path}/page/1"),
        site.client.get(f"{path}/withdraw"),
        site.client.post(f"{path}/page/1", data={"csrf": csrf, **answers}),
        site.client.post(f"{path}/consent", data={"csrf": csrf, "version": "v1"}),
        site.client.post(f"{path}/withdraw", data={"csrf": csrf}),
    ]
    refusal = site.client.get("/p/nobody/nothing").text
    for r in pages:
        assert r.status_code in (403, 404), r.status_code
        if r.status_code == 404:
            assert r.text == refusal  # the same page whatever was wrong
        assert "Traceback" not in r.text
    assert (_count(site.store, Response), _count(site.store, Consent)) == before
    assert verify_audit(site.store, caller=ADMIN).ok


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    page = _consent(site)
    answers = dict.fromkeys(_questions(page), "3")
    url = f"{site.links['A1']}/page/1"
    b_csrf = csrf_of(site.client.get(site.links["B2"]).text)  # valid, but for another link
    for data in (answers, {"csrf": "0" * 64, **answers}, {"csrf": b_csrf, **answers}):
        r = site.client.post(url, data=data)
        assert r.status_code == 403 and "Traceback" not in r.text
    withdrawal = site.client.post(f"{site.links['A1']}/withdraw", data={})
    consent = site.client.post(f"{site.links['B2']}/consent", data={"version": "v1"})
    assert withdrawal.status_code == consent.status_code == 403
    assert _count(site.store, Response) == 0
    assert _count(site.store, Consent) == 1  # A's own, given with the right token
    assert site.client.get(site.links["A1"]).text.count("Page 1 of 4") == 1  # not withdrawn


def test_stored_text_is_escaped_on_every_page(site: Site) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    set_consent_text(site.store, "pilot", "v<b>2</b>", f"Read this. {evil}", caller=ADMIN)
    first = site.client.get(site.links["A1"])
    assert "<script>" not in first.text and "<img" not in first.text and "<b>" not in first.text
    assert str(escape('<script>alert("x")</script>')) in first.text
    done = site.client.post(
        f"{site.links['A1']}/consent", data={"csrf": csrf_of(first.text), "version": "v<b>2</b>"}
    )
    assert done.status_code == 200 and "Page 1 of 4" in done.text
    for path in ("", "/page/1", "/page/4", "/withdraw"):
        body = site.client.get(site.links["A1"] + path).text
        assert "<script" not in body and "onerror=alert" not in body.replace(
            "onerror=alert(1)&gt;", ""
        )


def test_withdrawal_blocks_further_answers_and_is_audited(site: Site) -> None:
    page = _consent(site)
    answers = dict.fromkeys(_questions(page), "2")
    ask = site.client.get(f"{site.links['A1']}/withdraw")
    assert ask.status_code == 200 and "Stop taking part" in ask.text
    gone = site.client.post(f"{site.links['A1']}/withdraw", data={"csrf": csrf_of(ask.text)})
    assert gone.status_code == 200 and "You have withdrawn" in gone.text
    late = site.client.post(f"{site.links['A1']}/page/1", data={"csrf": csrf_of(page), **answers})
    assert late.status_code == 409 and "withdrawn" in late.text
    assert _count(site.store, Response) == 0
    assert "You have withdrawn" in site.client.get(f"{site.links['A1']}/page/1").text


def test_the_audit_log_records_each_step_without_the_token(site: Site) -> None:
    page = _consent(site)
    answers = dict.fromkeys(_questions(page), "2")
    site.client.post(f"{site.links['A1']}/page/1", data={"csrf": csrf_of(page), **answers})
    ask = site.client.get(f"{site.links['A1']}/withdraw")
    site.client.post(f"{site.links['A1']}/withdraw", data={"csrf": csrf_of(ask.text)})
    revoke_links(site.store, "pilot", "B2", caller=ADMIN)
    log = audit_frame(site.store, caller=ADMIN)
    actions = list(log["action"])
    for action in (
        "link.issue",
        "consent.add",
        "responses.page",
        "participant.withdraw",
        "link.revoke",
    ):
        assert action in actions, action
    consent = log[log["action"] == "consent.add"].iloc[0]
    assert consent["actor"] == "link:A1" and json.loads(consent["new"])["version"] == "v1"
    text = log.to_csv()
    for token in site.tokens.values():
        assert token not in text
    assert _count(site.store, AuditLog) == len(log)
    report = verify_audit(site.store, caller=ADMIN)
    assert report.ok and report.data_unchecked is None


def test_a_typed_answer_with_markup_is_stored_as_typed_and_escaped(
    store: Store, tmp_path: Path
) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(
        (DATA / "redcap_study.yaml").read_text(encoding="utf-8")
        + "consent: {version: v1, text: I agree.}\n",
        encoding="utf-8",
    )
    (tmp_path / "redcap_dictionary.csv").write_bytes((DATA / "redcap_dictionary.csv").read_bytes())
    create_study(store, "rc", config, caller=ADMIN)
    add_participant(store, "rc", "R1", site="leeds", caller=ADMIN)
    path = f"/p/R1/{issue_link(store, 'rc', 'R1', timepoint='baseline', caller=ADMIN).token}"
    evil = '<script>alert("x")</script>'
    with TestClient(create_app(store)) as client:
        first = client.get(path)
        page = client.post(f"{path}/consent", data={"csrf": csrf_of(first.text), "version": "v1"})
        assert "<h1>Contact</h1>" in page.text
        answers = {"enrol_date": "2026-03-01", "gender": "3", "age": "34", "comments": evil}
        answers |= {f"supports___{c}": "0" for c in ("1", "2", "3", "99")}
        bad = client.post(
            f"{path}/page/1", data={"csrf": csrf_of(page.text), **answers, "age": "old"}
        )
        assert bad.status_code == 422 and "is not a number" in bad.text
        assert "<script>" not in bad.text and str(escape(evil)) in bad.text
        saved = client.post(f"{path}/page/1", data={"csrf": csrf_of(page.text), **answers})
        assert saved.status_code == 200 and "Your answers on page 1 are saved." in saved.text
        again = client.get(f"{path}/page/1")
    assert "<script>" not in again.text and f'value="{escape(evil)}"' in again.text
    frame = export_frame(store, "rc", tier="remove_identifiers", caller=ADMIN)
    comments = frame[(frame["participant"] == "R1") & (frame["name"] == "comments")]
    assert list(comments["text"]) == [evil]  # stored as typed; escaped only when shown


def test_a_new_consent_version_is_asked_for_again_never_an_error(site: Site) -> None:
    page = _consent(site)  # agreed to v1; page 1 is open in the browser
    answers = dict.fromkeys(_questions(page), "3")
    old_consent_form = site.client.get(site.links["B2"]).text  # B2's consent page shows v1
    set_consent_text(site.store, "pilot", "v2", "New wording.\n\nStill voluntary.", caller=ADMIN)

    # Submitting the page opened under v1: the new text to agree to, not an error page.
    sent = site.client.post(f"{site.links['A1']}/page/1", data={"csrf": csrf_of(page), **answers})
    assert sent.status_code == 200 and "<h1>Consent</h1>" in sent.text
    assert "New wording." in sent.text and 'name="version" value="v2"' in sent.text
    assert "has changed since you agreed" in sent.text
    assert "Your answers on page 1 were not saved" in sent.text
    assert _count(site.store, Response) == 0
    # Opening the link says the same, without the note about a page.
    landing = site.client.get(site.links["A1"]).text
    assert "has changed since you agreed" in landing and "were not saved" not in landing

    # Agreeing to v1 from a consent page opened before the change: shown v2, nothing stored.
    late = site.client.post(
        f"{site.links['B2']}/consent", data={"csrf": csrf_of(old_consent_form), "version": "v1"}
    )
    assert late.status_code == 200 and 'name="version" value="v2"' in late.text
    assert "The consent text has changed" in late.text
    assert _count(site.store, Consent) == 1  # A1's v1 only

    agreed = site.client.post(
        f"{site.links['A1']}/consent", data={"csrf": csrf_of(sent.text), "version": "v2"}
    )
    assert agreed.status_code == 200 and "Page 1 of 4" in agreed.text
    saved = site.client.post(
        f"{site.links['A1']}/page/1", data={"csrf": csrf_of(agreed.text), **answers}
    )
    assert saved.status_code == 200 and "Page 2 of 4" in saved.text
    with site.store.transaction() as s:
        versions = sorted(s.scalars(select(Consent.version)))
    assert versions == ["v1", "v2"]


def test_a_typed_question_offers_prefer_not_to_answer(store: Store, tmp_path: Path) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(
        (DATA / "redcap_study.yaml").read_text(encoding="utf-8")
        + "missing_codes: [-99, -98]\nconsent: {version: v1, text: I agree.}\n",
        encoding="utf-8",
    )
    (tmp_path / "redcap_dictionary.csv").write_bytes((DATA / "redcap_dictionary.csv").read_bytes())
    create_study(store, "rc", config, caller=ADMIN)
    add_participant(store, "rc", "R1", site="leeds", caller=ADMIN)
    path = f"/p/R1/{issue_link(store, 'rc', 'R1', timepoint='baseline', caller=ADMIN).token}"
    with TestClient(create_app(store)) as client:
        first = client.get(path)
        page = client.post(f"{path}/consent", data={"csrf": csrf_of(first.text), "version": "v1"})
        for typed in ("age", "comments"):
            assert re.search(rf'type="checkbox" id="{typed}-skip" name="{typed}:skip"', page.text)
        assert 'id="enrol_date-skip"' not in page.text  # required: no way around it
        answers = {"enrol_date": "2026-03-01", "gender": "3", "comments": "fine"}
        answers |= {f"supports___{c}": "0" for c in ("1", "2", "3", "99")}
        empty = client.post(f"{path}/page/1", data={"csrf": csrf_of(page.text), **answers})
        assert empty.status_code == 422
        assert "Please type an answer or tick “prefer not to answer”." in empty.text
        # Ticked: the missing code is stored, whatever was typed beside it.
        skipped = {**answers, "age": "", "age:skip": "-99", "comments:skip": "-99"}
        saved = client.post(f"{path}/page/1", data={"csrf": csrf_of(page.text), **skipped})
        assert saved.status_code == 200 and "Your answers on page 1 are saved." in saved.text
        again = client.get(f"{path}/page/1").text
        forged = client.post(
            f"{path}/page/1", data={"csrf": csrf_of(page.text), **answers, "age:skip": "-98"}
        )
    assert re.search(r'id="age-skip" name="age:skip" value="-99" checked', again)
    assert re.search(r'id="age-1" name="age" value=""', again)  # the code is not shown as typed
    assert forged.status_code == 422  # only the offered code is taken, not another one
    frame = export_frame(store, "rc", tier="remove_identifiers", caller=ADMIN)
    mine = frame[(frame["participant"] == "R1") & (frame["kind"] == "item")]
    missing = dict(zip(mine["name"], mine["missing_code"], strict=True))
    assert missing["age"] == missing["comments"] == "-99"
