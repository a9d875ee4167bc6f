"""What a participant's requests cost the database does not grow with the study: the same
number of SQL statements for each step of a visit (link opened, consent, a page shown and
saved, a later page shown, the last form completed and scored) in a study of 5 participants
as in one of 50 in which everyone else has answered; on SQLite and PostgreSQL.

A guard on behaviour, not on time (speed is measured by ``benchmarks/bench_web.py``): a lookup
that reads per participant or per response, instead of the link's own rows, shows up as a
different count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from peerlens.study import (
    LinkHolder,
    NewParticipant,
    Store,
    add_participants,
    agree_to_consent,
    create_study,
    issue_link,
    open_visit,
    save_page,
)
from peerlens.web import WebSettings, create_app

from ..conftest import ADMIN, csrf_of

#: The steps of the measured participant's visit (the SCS on pages 1-3, the PHQ-9 on page 4).
STEPS = ("open", "consent", "first page", "save page 1", "show page 4", "complete phq9")


def _answers(html: str) -> dict[str, str]:
    """The first offered answer of every question on a page."""
    found = re.findall(r'type="radio" id="[^"]+" name="([^"]+)" value="([^"]*)"', html)
    return {name: value for name, value in reversed(found) if not name.endswith(":skip")}


def _study(store: Store, name: str, config: Path, size: int) -> dict[str, str]:
    """Study ``name`` with ``size`` participants, each with a link; all but the first have
    agreed to the consent text and completed the PHQ-9 (scored at once); their link paths."""
    create_study(store, name, config, caller=ADMIN)
    codes = [f"{name.upper()}{i:03d}" for i in range(size)]
    add_participants(store, name, [NewParticipant(c, site="leeds") for c in codes], caller=ADMIN)
    links = {}
    for code in codes:
        token = issue_link(store, name, code, timepoint="baseline", caller=ADMIN).token
        links[code] = f"/p/{code}/{token}"
        if code != codes[0]:
            holder = LinkHolder(code, token)
            agree_to_consent(store, "v1", caller=holder)
            phq9 = open_visit(store, caller=holder).pages[3].layout.questions
            saved = save_page(store, 4, {q.item: "1" for q in phq9}, caller=holder)
            assert saved.completed == ("phq9",)
    return links


@contextmanager
def _counting(store: Store) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def _visit_counts(client: TestClient, store: Store, link: str) -> dict[str, int]:
    """The statements each step of one participant's visit issued."""
    counts: dict[str, int] = {}

    def step(name: str, method: str, url: str, data: dict[str, str] | None = None) -> str:
        with _counting(store) as statements:
            response = client.request(method, url, data=data, follow_redirects=False)
        assert response.status_code in (200, 303), (name, response.status_code)
        counts[name] = len(statements)
        return response.text

    consent = step("open", "GET", link)
    step("consent", "POST", f"{link}/consent", {"csrf": csrf_of(consent), "version": "v1"})
    page = step("first page", "GET", link)
    csrf = csrf_of(page)
    step("save page 1", "POST", f"{link}/page/1", {"csrf": csrf, **_answers(page)})
    phq9 = step("show page 4", "GET", f"{link}/page/4")
    step("complete phq9", "POST", f"{link}/page/4", {"csrf": csrf, **_answers(phq9)})
    return counts


def test_a_visit_issues_as_many_statements_in_a_large_study_as_in_a_small_one(
    store: Store, visit_config_path: Path
) -> None:
    small = _study(store, "small", visit_config_path, 5)
    large = _study(store, "large", visit_config_path, 50)
    app = create_app(store, WebSettings(secret=b"test secret, protects nothing"))
    with TestClient(app) as client:
        # Another participant's link of each study first: what the study defines (forms, pages,
        # consent text) is read once per catalog revision, then only the revision is.
        for links in (small, large):
            assert client.get(list(links.values())[1]).status_code == 200
        in_small = _visit_counts(client, store, next(iter(small.values())))
        in_large = _visit_counts(client, store, next(iter(large.values())))
    assert list(in_small) == list(STEPS)
    assert in_large == in_small
    # And few: the link with its seal, the catalog revision, the answers, the consent given.
    assert in_small["first page"] <= 6, in_small
