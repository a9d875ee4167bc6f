"""The floor of the web stack for ``bench_web.py``: a minimal FastAPI app on the same uvicorn
settings as ``peerlens serve``, with the same shape of traffic as a participant's pages (a GET
of a small form page, a POST of a form answered with a 303 back to the landing page), but no
database, templates, CSRF check or audit. Run: ``python benchmarks/_web_floor.py PORT``.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

_FORM = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Page {n}</title></head>'
    '<body><form method="post" action="/p/{code}/{token}/page/{n}">'
    '<input type="hidden" name="csrf" value="0">{items}<button>Save</button></form></body></html>'
)


@app.get("/p/{code}/{token}", response_class=HTMLResponse)
def landing(code: str, token: str, page: int = 1) -> HTMLResponse:
    if page > 4:  # a consent page and three pages, as the SCS visit has
        return HTMLResponse("<!doctype html><title>Done</title><p>Thank you.</p>")
    items = "".join(f'<input type="radio" id="q{i}-1" name="q{i}" value="1">' for i in range(1, 10))
    return HTMLResponse(_FORM.format(n=page, code=code, token=token, items=items))


@app.post("/p/{code}/{token}/page/{number}")
async def save(request: Request, code: str, token: str, number: int) -> RedirectResponse:
    await request.form()
    return RedirectResponse(f"/p/{code}/{token}?page={number + 1}", status_code=303)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, server_header=False)
