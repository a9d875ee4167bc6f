"""The peerlens web app: server-rendered pages on FastAPI over the :mod:`peerlens.study` API.

Every route passes its caller (for participants: their personal link,
:class:`~peerlens.study.LinkHolder`) to the study functions, which check it; no route checks
rights itself. Pages are Jinja2 templates (autoescaped) styled by one static CSS file, with no
script, served with strict security headers (:mod:`peerlens.web.security`). Run it with
``peerlens serve``; see ``docs/web.md``.
"""

from peerlens.web.app import create_app
from peerlens.web.settings import WebSettings
from peerlens.web.urls import participant_url

__all__ = ["WebSettings", "create_app", "participant_url"]
