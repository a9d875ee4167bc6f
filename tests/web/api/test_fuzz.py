"""The JSON API fuzzed from its own OpenAPI schema (read, as a client would, from
``/api/v1/openapi.json`` with a token) with schemathesis: for every operation, including the
multipart recording upload, requests generated from the schema (half of them aimed at the
seeded study's real name, so that they reach its data) with a valid token of a global admin
holding every scope. No answer may be a server error, and every answer must match the schema
(status documented, body of the documented shape). The number of examples is bounded so that
the whole run stays short.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.routing import Mount

from .conftest import ADMIN, Glasgow, Site, bearer, token, walk_routes

#: Examples generated per operation (28 operations: the runtime stays near a minute).
EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance]
#: Where the schema is read from (with a token: it is not public).
SCHEMA = "/api/v1/openapi.json"


def _endpoints(site: Site) -> set[str]:
    """``METHOD /path`` of every endpoint of the mounted API app but the schema itself."""
    mounts = [r for _, r in walk_routes(site.client.app.routes) if isinstance(r, Mount)]  # type: ignore[attr-defined]
    (app,) = [m.app for m in mounts if m.path == "/api/v1"]
    return {
        f"{method} {prefix}{route.path}"
        for prefix, route in walk_routes(app.routes)
        if isinstance(route, APIRoute)
        for method in route.methods - {"HEAD"}
    } - {"GET /openapi.json"}


def _fuzz(operation: Any, headers: dict[str, str], real: dict[str, str]) -> None:
    strategy = operation.as_strategy()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, aimed=st.booleans())
    def run(case: Any, aimed: bool) -> None:
        if aimed:  # the seeded study's names, so that the request reaches real data
            for name, value in real.items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.slow
def test_no_server_error_and_every_answer_matches_the_schema(site: Site, glasgow: Glasgow) -> None:
    headers = bearer(token(site, ADMIN, ("read", "write", "export", "admin")))
    schema = schemathesis.openapi.from_asgi(SCHEMA, site.client.app, headers=headers)
    real = {
        "study": "pilot",
        "participant": "B2",
        "recording": glasgow.recording,
        "worker": glasgow.worker,
        "story_id": str(glasgow.story),
        "what": "hrv",
    }
    operations = [op.ok() for op in schema.get_all_operations()]
    # Every endpoint of the API is in its schema, so every one is fuzzed.
    assert {op.label for op in operations} == _endpoints(site)
    for operation in operations:
        _fuzz(operation, headers, real)
