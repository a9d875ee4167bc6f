"""The server's front page: says what this is and where participants go."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from peerlens.web.pages import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """A plain page: participants open their personal link instead."""
    return render(request, "home.html")
