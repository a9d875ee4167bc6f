"""The one `peerlens` command: every capability's group is registered and has help."""

import pytest
from typer.testing import CliRunner

from peerlens.cli import app

GROUPS = (
    "score",
    "export",
    "demo",
    "instruments",
    "story",
    "hrv",
    "study",
    "participant",
    "responses",
    "recordings",
    "audit",
    "serve",
)


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    words = set(result.output.replace("│", " ").split())
    assert set(GROUPS) <= words


@pytest.mark.parametrize("group", GROUPS)
def test_each_command_has_help(group: str) -> None:
    result = CliRunner().invoke(app, [group, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_unknown_command_exits_2() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2
