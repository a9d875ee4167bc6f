"""Rendering pages: the Jinja2 environment (autoescaping everything) and the error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = ["TEMPLATES", "environment", "render"]

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    """The template environment: every value escaped, unknown names an error."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` rendered with ``context`` (plus ``static``, the static files' path, and
    ``staff``, the signed-in staff member of a staff page, else ``None``)."""
    env: Environment = request.app.state.templates
    root = request.scope.get("root_path", "")
    context.setdefault("staff", getattr(request.state, "staff", None))
    html = env.get_template(name).render(static=f"{root}/static", **context)
    return HTMLResponse(html, status_code=status)
