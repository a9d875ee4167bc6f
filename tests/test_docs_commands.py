"""The documented commands exist: every `peerlens ...` line in a shell block of the README or
docs/*.md names a real command and only options that command has (docs cannot drift from the
CLI)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from peerlens.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _readme_commands() -> list[str]:
    lines = []
    for doc in DOCS:
        lines += _shell_commands(doc)
    return lines


def _shell_commands(doc: Path) -> list[str]:
    lines = []
    in_shell = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_shell = line.strip() in ("```sh", "```console", "```bash")
            continue
        text = line.split("#", 1)[0].strip().removeprefix("$ ")
        if in_shell and "peerlens " in text:
            lines.append(text[text.index("peerlens ") :])
    return lines


def _resolve(words: list[str]) -> tuple[list[str], Any]:
    """Walk the CLI's command tree along the leading words (``hrv analyze``)."""
    command: Any = typer.main.get_command(app)  # typer's own click: groups have .commands
    path: list[str] = []
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    return path, command


COMMANDS = _readme_commands()


def test_the_readme_shows_commands() -> None:
    assert len(_shell_commands(ROOT / "README.md")) >= 15


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_and_its_options_exist(line: str) -> None:
    words = shlex.split(line.split("|", 1)[0].split(">", 1)[0])[1:]
    path, command = _resolve(words)
    assert path and not hasattr(command, "commands"), f"no such command: {line}"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", " ".join(words)):
        assert option in known, f"{' '.join(path)} has no option {option}"
