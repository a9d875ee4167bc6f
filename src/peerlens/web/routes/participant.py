"""A participant's pages, all under their personal link ``/p/{code}/{token}``: consent, the
timepoint's questionnaire pages, withdrawal.

Each route passes the link on as the caller of a :mod:`peerlens.study` function, which checks
it; a bad link of any kind raises ``PermissionDenied`` and gets the one refusal page. Every
POST carries the link's CSRF token (:data:`~peerlens.web.deps.CheckedForm`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from peerlens.study import (
    ConsentNeeded,
    LinkHolder,
    PageSaved,
    Store,
    Visit,
    agree_to_consent,
    open_visit,
    save_page,
    withdraw_through_link,
)
from peerlens.web.deps import CheckedForm, Holder, Settings, StoreDep
from peerlens.web.pages import render
from peerlens.web.security import csrf_token
from peerlens.web.settings import WebSettings

router = APIRouter(prefix="/p/{code}/{token}")

#: The name suffix of a typed question's "prefer not to answer" box (``age:skip``; a colon is
#: never part of an item name). Ticked, it sends the study's missing code as the answer.
SKIP_SUFFIX = ":skip"


@router.get("", response_class=HTMLResponse, name="landing")
def landing(
    request: Request,
    holder: Holder,
    store: StoreDep,
    settings: Settings,
    saved: int | None = None,
) -> HTMLResponse:
    """Where the link leads: consent first, then the first page not yet answered."""
    visit = open_visit(store, caller=holder)
    return _next_step(request, holder, settings, visit, saved)


@router.post("/consent", name="consent")
async def consent(
    request: Request, holder: Holder, store: StoreDep, settings: Settings, form: CheckedForm
) -> Response:
    """Agree to the consent text shown (its version comes back with the form); a version
    that is no longer the current one gets the current text to read instead."""
    version = str(form.get("version", ""))
    try:
        await run_in_threadpool(agree_to_consent, store, version, caller=holder)
    except ConsentNeeded:
        notice = (
            "The consent text has changed since this page was opened: please read the new version."
        )
        return await _consent_again(request, holder, store, settings, notice)
    return _to_landing(request, holder)


@router.get("/page/{number}", response_class=HTMLResponse, name="page")
def page(
    request: Request, number: int, holder: Holder, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """One questionnaire page with the answers saved so far (to review or change them)."""
    visit = open_visit(store, caller=holder)
    if not visit.open:
        return _next_step(request, holder, settings, visit, None)
    if not 1 <= number <= len(visit.pages):
        return render(request, "refused.html", 404)
    return _page(request, holder, settings, visit, number)


@router.post("/page/{number}", name="save")
async def save(
    request: Request,
    number: int,
    holder: Holder,
    store: StoreDep,
    settings: Settings,
    form: CheckedForm,
) -> Response:
    """Save one page: back to the same page with the problems, or on to the next step."""
    answers = _answers(form)
    try:
        result: PageSaved = await run_in_threadpool(
            save_page, store, number, answers, caller=holder
        )
    except ConsentNeeded:  # e.g. the researcher set a new consent version while the page was open
        notice = (
            f"Your answers on page {number} were not saved: please read and agree to the "
            "consent text first, then give them again."
        )
        return await _consent_again(request, holder, store, settings, notice)
    if result.problems:
        return _page(request, holder, settings, result.visit, number, result, status=422)
    return _to_landing(request, holder, saved=number)


@router.get("/withdraw", response_class=HTMLResponse, name="withdraw")
def withdraw_question(
    request: Request, holder: Holder, store: StoreDep, settings: Settings
) -> HTMLResponse:
    """Ask whether the participant wants to stop taking part."""
    visit = open_visit(store, caller=holder)
    if visit.withdrawn:
        return _next_step(request, holder, settings, visit, None)
    return render(request, "withdraw.html", **_common(request, holder, settings, visit))


@router.post("/withdraw", name="withdrawn")
async def withdraw(
    request: Request, holder: Holder, store: StoreDep, form: CheckedForm
) -> Response:
    """Withdraw the participant (answers given so far are kept)."""
    await run_in_threadpool(withdraw_through_link, store, caller=holder)
    return _to_landing(request, holder)


def _answers(form: FormData) -> dict[str, str]:
    """Item -> answer as sent; a ticked "prefer not to answer" box of a typed question sends
    its code as that question's answer, whatever was typed beside it."""
    answers = {
        k: v for k, v in form.items() if isinstance(v, str) and k != "csrf" and SKIP_SUFFIX not in k
    }
    for k, v in form.items():
        if isinstance(v, str) and k.endswith(SKIP_SUFFIX):
            answers[k.removesuffix(SKIP_SUFFIX)] = v
    return answers


async def _consent_again(
    request: Request, holder: LinkHolder, store: Store, settings: WebSettings, notice: str
) -> HTMLResponse:
    """The step the link is at now (the current consent text to agree to), with ``notice``
    saying why the participant is there."""
    visit: Visit = await run_in_threadpool(open_visit, store, caller=holder)
    return _next_step(request, holder, settings, visit, None, notice=notice)


def _to_landing(request: Request, holder: LinkHolder, **query: int) -> RedirectResponse:
    url = request.url_for("landing", code=holder.participant, token=holder.token)
    target = url.include_query_params(**query) if query else url
    # A path, not an absolute URL: right behind a reverse proxy whatever its scheme.
    where = target.path + (f"?{target.query}" if target.query else "")
    return RedirectResponse(where, status_code=303)


def _common(
    request: Request, holder: LinkHolder, settings: WebSettings, visit: Visit
) -> dict[str, Any]:
    base = request.url_for("landing", code=holder.participant, token=holder.token).path
    return {
        "visit": visit,
        "base": base,
        "csrf": csrf_token(settings.secret, holder.token),
        "title": visit.study_title,
    }


def _next_step(
    request: Request,
    holder: LinkHolder,
    settings: WebSettings,
    visit: Visit,
    saved: int | None,
    *,
    notice: str | None = None,
) -> HTMLResponse:
    common = _common(request, holder, settings, visit)
    if visit.withdrawn:
        return render(request, "withdrawn.html", **common)
    if visit.status != "enrolled" or (visit.consent is None and not visit.consented):
        return render(request, "closed.html", **common)
    if not visit.consented:
        return render(request, "consent.html", notice=notice, **common)
    if visit.next_page is None:
        return render(request, "done.html", saved=saved, **common)
    return _page(request, holder, settings, visit, visit.next_page, saved=saved)


def _page(
    request: Request,
    holder: LinkHolder,
    settings: WebSettings,
    visit: Visit,
    number: int,
    result: PageSaved | None = None,
    *,
    saved: int | None = None,
    status: int = 200,
) -> HTMLResponse:
    shown = visit.pages[number - 1]
    values = dict(shown.answers)
    if result is not None:  # what was typed, shown again beside the problems
        values.update({k: v for k, v in result.submitted.items() if v != ""})
    just_saved = (
        saved
        if saved is not None and 1 <= saved <= len(visit.pages) and visit.pages[saved - 1].complete
        else None
    )
    return render(
        request,
        "page.html",
        status,
        page=shown,
        values=values,
        problems=dict(result.problems) if result is not None else {},
        just_saved=just_saved,
        saved_pages=[p.number for p in visit.pages if p.complete],
        skip_suffix=SKIP_SUFFIX,
        **_common(request, holder, settings, visit),
    )
