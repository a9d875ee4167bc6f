"""The API's error object over HTTP: one shape for every status, each study error mapped to its
status and code, the values sent never echoed, no traceback; and a study the caller has no role
in answers exactly as one that does not exist. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peerlens.study import Caller, create_study

from .conftest import ADMIN, Site, api, make_user


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "where"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = body["error"]
    return error


def test_each_kind_of_error_has_its_status_and_code(site: Site) -> None:
    client = api(site, scopes=("read", "write"))
    _error(client.get("/api/v1/no/such/thing"), 404, "not_found")
    _error(client.delete("/api/v1/studies"), 405, "method_not_allowed")
    forbidden = _error(client.get("/api/v1/users"), 403, "forbidden")
    assert "needs the 'admin' scope" in forbidden["message"]
    secret = "a value that must not come back"
    bad = _error(
        client.post("/api/v1/stories/analyse", json={"text": 12, "extra": secret}),
        422,
        "invalid_request",
    )
    assert bad["where"]["errors"][0]["location"] == "body.text"
    rejected = _error(
        client.post(
            "/api/v1/studies/pilot/responses",
            json={"timepoint": "baseline", "instrument": "phq9", "rows": [{"participant": "Z9"}]},
        ),
        422,
        "rejected",
    )
    problems = rejected["where"]["problems"]
    assert {"row": 1, "column": "participant", "reason": "unknown participant 'Z9'"} in problems
    assert "/tmp" not in str(rejected) and "rows.csv" not in str(rejected)
    conflict = _error(
        client.post(
            "/api/v1/studies/pilot/responses",
            json={"timepoint": "week99", "rows": [{"participant": "A1"}]},
        ),
        409,
        "not_possible",
    )
    assert "week99" in conflict["message"]
    _error(client.post("/api/v1/stories/analyse", json={"text": "   "}), 400, "bad_input")
    unauthenticated = client.get("/api/v1/studies", headers={"Authorization": "Bearer plk_x"})
    assert _error(unauthenticated, 401, "unauthenticated")["message"].startswith("the access token")


def test_a_broken_model_installation_answers_503_without_server_details(
    site: Site, monkeypatch: Any
) -> None:
    import peerlens.narrative as narrative
    from peerlens.narrative.encoder import EncoderWeightsError

    def broken(*args: object, **kwargs: object) -> object:
        raise EncoderWeightsError("/srv/venv/site-packages/model.zip: pip install --no-deps ...")

    monkeypatch.setattr(narrative, "analyze", broken)
    client = api(site, scopes=("read", "write"))
    error = _error(
        client.post("/api/v1/stories/analyse", json={"text": "Me too."}), 503, "unavailable"
    )
    assert "/srv/venv" not in error["message"] and "pip" not in error["message"]


def test_a_study_without_a_role_reads_as_one_that_does_not_exist(
    site: Site, tmp_path: Path
) -> None:
    config = tmp_path / "other.yaml"
    config.write_text("sites: [york]\ntimepoints:\n  - name: baseline\n    instruments: [phq9]\n")
    create_study(site.store, "other", config, caller=ADMIN)
    make_user(site.store, "pilot-res", "researcher", study="pilot")
    client = api(site, Caller("pilot-res"), ("read", "write", "export"))
    for path in ("", "/participants", "/progress", "/responses"):
        hidden = _error(client.get(f"/api/v1/studies/other{path}"), 404, "not_found")
        missing = _error(client.get(f"/api/v1/studies/nowhere{path}"), 404, "not_found")
        assert hidden["message"].replace("other", "X") == missing["message"].replace("nowhere", "X")
    assert client.get("/api/v1/studies/pilot").status_code == 200
    listed = client.get("/api/v1/studies").json()["items"]
    assert [x["name"] for x in listed] == ["pilot"]
