from typer.testing import CliRunner

from peerlens.cli import app


def test_help_lists_command_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("instruments", "story", "hrv", "demo"):
        assert group in result.output
