"""``peerlens token create | list | revoke``: a user's own tokens from the command line; the
token printed once works on the API and stops at revocation; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.study import PermissionDenied, Store, resume_token

from ..conftest import ACTOR, PASSWORD


def test_create_list_and_revoke_a_token(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_DB", db_url)
    monkeypatch.setenv("PEERLENS_NEW_PASSWORD", PASSWORD)
    runner = CliRunner()
    done = runner.invoke(app, ["init", "--admin", ACTOR, "--recordings", str(tmp_path / "b")])
    assert done.exit_code == 0, done.output
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    made = runner.invoke(app, ["token", "create", "nightly", "--scope", "read", "--days", "7"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("plk_") and "\n" not in token
    assert "shown this once" in made.stderr and token not in made.stderr
    with Store.open(db_url) as store:
        assert resume_token(store, token).username == ACTOR
    listed = runner.invoke(app, ["token", "list"])
    assert listed.exit_code == 0 and token not in listed.stdout
    header, row = listed.stdout.strip().splitlines()
    assert header.split("\t")[:4] == ["id", "name", "scopes", "state"]
    assert row.split("\t")[:4] == ["1", "nightly", "read", "active"]
    revoked = runner.invoke(app, ["token", "revoke", "1"])
    assert revoked.exit_code == 0 and "revoked token 1" in revoked.stdout
    with Store.open(db_url) as store, pytest.raises(PermissionDenied):
        resume_token(store, token)
    for args, why in (
        (["token", "create", "x", "--scope", "root"], "unknown token scope"),
        (["token", "create", "x", "--scope", "read", "--days", "999"], "1 to 366 days"),
        (["token", "revoke", "99"], "unknown token 99"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and why in result.output, (args, result.output)
