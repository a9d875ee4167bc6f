"""``tools/stage_shared_fixtures.py``: the manifest is well formed, and a file whose hash differs
from the manifest's is refused with nothing written."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from .._scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
#: Repositories whose files are kept for independent evaluation: never a fixture source.
RESERVED = {
    "vubiostat/redcapapi",
    "agdamsbo/redcapcast",
    "bruigtp/redcapdm",
    "abcd-study/geocoding",
    "belieflab/scid-5",
    "michaelpascale/tlfb",
    "iedea/redcap-dictionaries",
    "repronim/reproschema-py",
    "bih-cei/rarelink",
    "paulvangentcom/heartrate_analysis_python",
    "cliffordlab/physionet-cardiovascular-signal-toolbox",
    "marianux/ecg-kit",
    "bitalinoworld/revolution-sample-data",
    "kbroman/detectpvc",
    "c-labpl/qrs_detector",
    "kalouskova/dp",
    "welltory/welltory-ppg-dataset",
}


def _tool() -> ModuleType:
    return load_script(ROOT / "tools" / "stage_shared_fixtures.py")


def test_the_manifest_is_well_formed() -> None:
    tool = _tool()
    manifest = json.loads(tool.MANIFEST.read_text(encoding="utf-8"))
    sources = {s["folder"]: s for s in manifest["sources"]}
    assert len(sources) == len(manifest["sources"])
    for source in sources.values():
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), source["folder"]
        assert source["licence"].strip() and source["licence_path"].strip(), source["folder"]
        assert source["repository"].lower() not in RESERVED, source["repository"]
    dests = [f"{f['source']}/{f['dest']}" for f in manifest["files"]]
    assert len(dests) == len(set(dests))
    for entry in manifest["files"]:
        assert entry["source"] in sources, entry["dest"]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry["dest"]
        assert entry["transform"] in tool.TRANSFORMS, entry["dest"]
        assert ("path" in entry) == (entry["transform"] not in {"empty", "literal"}), entry["dest"]
    assert all(any(f["source"] == s for f in manifest["files"]) for s in sources)


def _git(*args: str, cwd: Path | None = None, data: bytes | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=data, capture_output=True, check=True, env=env
    )
    return done.stdout.decode().strip()


def _mirror(root: Path) -> tuple[str, bytes]:
    """A bare mirror ``root/owner+name/repo`` with ``data.csv`` and ``LICENSE``; its commit."""
    git_dir = root / "owner+name" / "repo"
    _git("init", "-q", "--bare", str(git_dir))
    content = b"record_id,age\n1,30\n"
    blobs = [
        _git("--git-dir", str(git_dir), "hash-object", "-w", "--stdin", data=d)
        for d in (content, b"MIT licence text\n")
    ]
    listing = f"100644 blob {blobs[0]}\tdata.csv\n100644 blob {blobs[1]}\tLICENSE\n"
    tree = _git("--git-dir", str(git_dir), "mktree", data=listing.encode())
    commit = _git("--git-dir", str(git_dir), "commit-tree", tree, "-m", "fixture")
    return commit, content


def _manifest(path: Path, commit: str, sha256: str) -> Path:
    source = {"folder": "redcap/real-projects/src", "repository": "owner/name", "commit": commit}
    source |= {"licence": "MIT", "licence_path": "LICENSE", "about": "A test project."}
    entry = {"source": source["folder"], "dest": "p/data.csv", "path": "data.csv"}
    entry |= {"transform": "copy", "sha256": sha256}
    path.write_text(json.dumps({"sources": [source], "files": [entry]}), encoding="utf-8")
    return path


def test_files_are_staged_with_licence_and_readmes(tmp_path: Path) -> None:
    tool = _tool()
    commit, content = _mirror(tmp_path / "mirrors")
    manifest = _manifest(tmp_path / "m.json", commit, hashlib.sha256(content).hexdigest())
    out = tmp_path / "out"
    assert (
        tool.main(
            [
                "--mirror-root",
                str(tmp_path / "mirrors"),
                "--out",
                str(out),
                "--manifest",
                str(manifest),
            ]
        )
        == 0
    )
    folder = out / "redcap" / "real-projects"
    assert (folder / "src" / "p" / "data.csv").read_bytes() == content
    assert (folder / "src" / "LICENSE").read_text() == "MIT licence text\n"
    assert "| `p` |" in (folder / "src" / "README.md").read_text()
    assert "`src`" in (folder / "README.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["redcap"]


def test_a_wrong_hash_is_refused_naming_the_file_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = _tool()
    commit, _ = _mirror(tmp_path / "mirrors")
    manifest = _manifest(tmp_path / "m.json", commit, "0" * 64)
    out = tmp_path / "out"
    args = ["--mirror-root", str(tmp_path / "mirrors"), "--out", str(out)]
    assert tool.main([*args, "--manifest", str(manifest)]) == 2
    assert "redcap/real-projects/src/p/data.csv" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_a_missing_commit_is_refused(tmp_path: Path) -> None:
    tool = _tool()
    _mirror(tmp_path / "mirrors")
    manifest = _manifest(tmp_path / "m.json", "1" * 40, "0" * 64)
    out = tmp_path / "out"
    args = ["--mirror-root", str(tmp_path / "mirrors"), "--out", str(out)]
    assert tool.main([*args, "--manifest", str(manifest)]) == 2
    assert list(out.iterdir()) == []
