import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerlens.cli import app

runner = CliRunner()


def test_classify_stdin_json_lines() -> None:
    result = runner.invoke(
        app, ["story", "classify", "-"], input="me too\n\nat least u have a job\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["label"] for x in lines] == ["connection", "downward"]
    assert set(lines[0]) >= {"text", "label", "confidence", "probabilities", "cues"}
    assert lines[1]["cues"] == ["at least you"]


def test_classify_file(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("look at me now, i beat it\n", encoding="utf-8")
    result = runner.invoke(app, ["story", "classify", str(f)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["label"] == "upward"


def test_analyze_transcript_writes_json_and_html(tmp_path: Path) -> None:
    f = tmp_path / "session.vtt"
    f.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<v Sam>I had that too, honestly.\n\n"
        "00:00:03.000 --> 00:00:05.000\n<v Alex>did you?\n\n"
        "00:00:05.000 --> 00:00:08.000\n<v Sam>At least you have your family though.\n",
        encoding="utf-8",
    )
    out_json, out_html = tmp_path / "o.json", tmp_path / "o.html"
    result = runner.invoke(
        app,
        [
            "story",
            "analyze",
            str(f),
            "--transcript",
            "--speaker",
            "sam",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "connection index 0.50" in result.stdout
    assert "hint:" in result.stdout
    data = json.loads(out_json.read_text())
    assert data["speaker"] == "Sam"
    assert [s["label"] for s in data["sentences"]] == ["connection", "downward"]
    assert "Session summary" in out_html.read_text()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"", [], "empty"),
        (b"PK\x03\x04xx", [], "ZIP container"),
        ("caf\u00e9".encode("latin-1"), [], "not valid UTF-8"),
        (b"Sam: hi\nAlex: hello", ["--transcript", "--speaker", "Jo"], "'Jo' not found"),
        (b"Sam: hi\nAlex: hello", ["--transcript"], "name the PS worker"),
        ("Yo también me sentí así cuando estaba en el hospital.".encode(), [], "Spanish"),
        (b"no label here\nSam: hi", ["--transcript", "--speaker", "Sam"], "line 1"),
    ],
)
def test_analyze_bad_input_exits_2(
    tmp_path: Path, content: bytes, args: list[str], message: str
) -> None:
    f = tmp_path / "in.txt"
    f.write_bytes(content)
    result = runner.invoke(app, ["story", "analyze", str(f), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_classify_empty_stdin_exits_2() -> None:
    result = runner.invoke(app, ["story", "classify"], input="")
    assert result.exit_code == 2


@pytest.mark.slow
def test_train_writes_an_artifact_equal_to_the_shipped_one(tmp_path: Path) -> None:
    from peerlens.narrative.devcorpus import dev_corpus_paths
    from peerlens.narrative.model import TextModel, load_model

    from ._reproduce import assert_reproduces

    root = Path(__file__).resolve().parents[2]
    if not dev_corpus_paths(root).available():
        pytest.skip("real texts not rebuilt (tools/build_real_corpus.py build)")
    result = runner.invoke(app, ["story", "train", "--out", str(tmp_path), "--root", str(root)])
    assert result.exit_code == 0, result.output
    fresh, shipped = TextModel.load(tmp_path), load_model()
    assert_reproduces(fresh, shipped, dev_corpus_paths(root))
    assert fresh.meta["corpus_sha256"] == shipped.meta["corpus_sha256"]
    assert fresh.meta["real_batches"] == shipped.meta["real_batches"]
    assert f"batches {', '.join(str(b) for b in shipped.meta['real_batches'])})" in result.output


def test_train_without_the_rebuilt_real_texts_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["story", "train", "--out", str(tmp_path), "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "build_real_corpus" in result.output


def test_analyze_reports_non_english_sentences_and_strict_json(tmp_path: Path) -> None:
    f = tmp_path / "story.txt"
    f.write_text(
        "What time is group on Tuesday? Is it in the same room as last week?\n"
        "Moi aussi, j'ai eu des moments très difficiles.\n",
        encoding="utf-8",
    )
    out_json = tmp_path / "o.json"
    result = runner.invoke(app, ["story", "analyze", str(f), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert "1 sentence(s) not analysed: not English (French)" in result.stdout
    data = json.loads(out_json.read_text(encoding="utf-8"), parse_constant=pytest.fail)
    assert data["summary"]["connection_index"] is None  # strict JSON, no NaN
    assert [u["language"] for u in data["unsupported"]] == ["French"]
    assert data["model"]["model_version"].startswith("story-lr-1-")


def test_classify_reports_a_foreign_line_in_place() -> None:
    lines = (
        "me too honestly\n"
        "Yo también me sentí así cuando estaba en el hospital.\n"
        "at least u have a job\n"
    )
    result = runner.invoke(app, ["story", "classify"], input=lines)
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["label"] for x in out] == ["connection", None, "downward"]
    assert out[1]["unsupported"] == "Spanish" and out[1]["probabilities"] is None
    assert "unsupported" not in out[0]


def test_classify_without_the_encoder_weights_exits_2_and_names_the_fix(tmp_path: Path) -> None:
    """A model that needs the MiniLM weights, run where they are missing: a clear error."""
    import os
    import subprocess
    import sys

    from peerlens.narrative.encoder import WEIGHTS_ENV
    from peerlens.narrative.model import packaged_model_meta

    if packaged_model_meta()["config"].get("embedding") != "minilm":
        pytest.skip("the packaged model does not use the encoder")
    import peerlens

    src = str(Path(peerlens.__file__).resolve().parents[1])  # the peerlens under test
    env = {**os.environ, WEIGHTS_ENV: str(tmp_path / "absent.whl"), "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, "-c", "from peerlens.cli import main; main()", "story", "classify", "-"],
        input="me too\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "absent.whl" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
