"""Fixtures of the browser tests: ``peerlens serve``'s app on uvicorn in a thread (a real HTTP
server on a free port, over a SQLite study database), Debian's Chromium driven by Playwright,
and axe-core.

Chromium is the system one (``PEERLENS_CHROMIUM``, default ``/usr/bin/chromium``): Playwright's
own browser download is never used. axe-core is the npm package ``.ci/run`` installs
(``PEERLENS_AXE_JS``, default ``.ci/node_modules/axe-core/axe.min.js``). Without either the tests
skip, naming what is missing; with ``CI`` set they fail instead. Screenshots of every page go to
``PEERLENS_SCREENSHOTS`` (default ``tests-out/screenshots``, git-ignored); with
``PEERLENS_DOCS_SCREENSHOTS=1`` the staff pages shown in ``docs/web.md`` are saved again into
``docs/img/web``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peerlens.study import Store, add_participant, create_study, issue_link
from peerlens.web import WebSettings, create_app

from ...conftest import ADMIN, make_user

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path(os.environ.get("PEERLENS_CHROMIUM") or "/usr/bin/chromium")
AXE_JS = Path(
    os.environ.get("PEERLENS_AXE_JS") or ROOT / ".ci" / "node_modules" / "axe-core" / "axe.min.js"
)
SCREENSHOTS = Path(os.environ.get("PEERLENS_SCREENSHOTS") or ROOT / "tests-out" / "screenshots")
#: Where the staff pages' screenshots for docs/web.md go, taken only when
#: ``PEERLENS_DOCS_SCREENSHOTS=1`` (so that a test run never changes the committed images).
DOCS_SCREENSHOTS = ROOT / "docs" / "img" / "web"
TAKE_DOCS_SCREENSHOTS = os.environ.get("PEERLENS_DOCS_SCREENSHOTS", "") == "1"

#: The viewports every participant page is checked on: a small phone and a desktop.
VIEWPORTS = {
    "phone": {"width": 360, "height": 740},
    "desktop": {"width": 1280, "height": 900},
}


def _missing(what: str) -> None:
    """Skip (fail under CI, which installs it) because ``what`` is absent."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {what}: the browser tests must run (see .ci/run)")
    pytest.skip(what)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The browser tests run on SQLite only (the pages are the same on PostgreSQL, which the
    HTTP tests in ``tests/web/routes`` cover)."""
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (one per test module: Playwright's
    event loop is gone before the other tests run)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if not CHROMIUM.exists():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script."""
    if not AXE_JS.exists():
        _missing(f"axe-core not found at {AXE_JS} (npm install --prefix .ci axe-core)")
    return AXE_JS.read_text(encoding="utf-8")


@dataclass
class Served:
    """A running app: its address, its store, the researcher who reads results, and one
    personal link per participant."""

    url: str
    store: Store
    links: dict[str, str]

    def link(self, code: str) -> str:
        """The full address of participant ``code``'s link."""
        return self.url + self.links[code]


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def served(store: Store, visit_config_path: Path) -> Iterator[Served]:
    """The pilot study (SCS and PHQ-9 at baseline, consent text v1) with participants A1, A2
    (leeds) and B1 (glasgow), each with a baseline link, served as ``peerlens serve`` serves
    it (uvicorn, no access log) on a free port of 127.0.0.1."""
    import uvicorn

    create_study(store, "pilot", visit_config_path, caller=ADMIN)
    make_user(store, "rita", "researcher", study="pilot", tier="deidentified")
    links: dict[str, str] = {}
    for code, where in (("A1", "leeds"), ("A2", "leeds"), ("B1", "glasgow")):
        add_participant(store, "pilot", code, site=where, caller=ADMIN)
        token = issue_link(store, "pilot", code, timepoint="baseline", caller=ADMIN).token
        links[code] = f"/p/{code}/{token}"
    app = create_app(store, WebSettings(secret=b"browser tests, protects nothing"))
    sock = _free_socket()
    config = uvicorn.Config(app, access_log=False, server_header=False, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()[:2]
    try:
        yield Served(f"http://{host}:{port}", store, links)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
