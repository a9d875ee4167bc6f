"""``peerlens serve``: the web app (participants' personal links) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from peerlens._commands._common import user_errors
from peerlens._commands.study import Db


def register(root: typer.Typer) -> None:
    """Attach ``serve`` to the root CLI."""
    root.command("serve")(serve)


def serve(
    db: Db = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    behind_tls: Annotated[
        bool,
        typer.Option(
            "--behind-tls",
            envvar="PEERLENS_WEB_HSTS",
            help="Served over HTTPS (e.g. by a reverse proxy): send HSTS.",
        ),
    ] = False,
) -> None:
    """Serve the web app: participants answer through their personal links.

    The access log is off: a personal link's token is in its URL and must not land in logs.
    """
    with user_errors():
        import uvicorn

        from peerlens._blas import one_blas_thread_for_this_process
        from peerlens.study.storage import Store
        from peerlens.web import WebSettings, create_app

        settings = WebSettings.from_env(hsts=behind_tls)
        # requests run side by side; BLAS's own threads would take their cores (docs/web.md)
        one_blas_thread_for_this_process()
        # A connection for every worker thread (and a few for the app's own start-up work).
        store = Store.open(db, pool_size=settings.threads, max_overflow=10)
        try:
            app = create_app(store, settings)
            typer.echo(f"peerlens serving on http://{host}:{port} (Ctrl+C stops)")
            uvicorn.run(
                app,
                host=host,
                port=port,
                access_log=False,
                proxy_headers=behind_tls,
                server_header=False,
            )
        finally:
            store.close()
