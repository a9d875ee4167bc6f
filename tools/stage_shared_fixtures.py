"""Rebuild the third-party fixture folders of ``shared/data`` from fetched GitHub snapshots.

Third-party data is never committed to this repository. ``tools/shared_fixtures.json`` records,
for every fixture file, the repository, commit and path it comes from, how it is produced (a byte
copy, or REDCap's API JSON written as REDCap's CSV export), its sha256, and the licence of its
source. This script reads each file from a bare git mirror (``<mirror-root>/<owner>+<name>/repo``)
with ``git show <commit>:<path>``, checks the hash, and writes the folders with each source's
``LICENSE`` and a ``README.md`` generated from the manifest. It builds everything in a temporary
folder and moves it into ``--out`` only when every file checked out: on a missing mirror or
commit, or a wrong hash, it names the file and writes nothing.

Run: ``python tools/stage_shared_fixtures.py --mirror-root /work/.mirror --out DIR``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().with_name("shared_fixtures.json")
#: REDCap's API CSV metadata export header (the 18 API names, in REDCap's order).
REDCAP_METADATA_FIELDS = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
)
TRANSFORMS = ("copy", "empty", "literal", "redcap-metadata-csv", "redcap-records-csv")


class StageError(Exception):
    """A fixture file that cannot be produced as the manifest records it."""


def mirror_dir(mirror_root: Path, repository: str) -> Path:
    """The bare git directory of ``repository`` (``owner/name``) under ``mirror_root``.

    Parameters
    ----------
    mirror_root : Path
        Folder holding ``<owner>+<name>/repo`` mirrors (bare, or with a ``.git`` inside).
    repository : str
        ``owner/name``.

    Returns
    -------
    Path
        ``<mirror_root>/<owner>+<name>/repo``, or its ``.git`` when the mirror has one.
    """
    git_dir = mirror_root / repository.replace("/", "+") / "repo"
    return git_dir / ".git" if (git_dir / ".git").is_dir() else git_dir


def git_show(git_dir: Path, commit: str, path: str) -> bytes:
    """The bytes of ``path`` at ``commit`` in the bare repository ``git_dir``.

    Parameters
    ----------
    git_dir : Path
        A bare git directory.
    commit : str
        Commit id (40 hex digits).
    path : str
        Path inside the repository.

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    StageError
        When the mirror, the commit or the path is missing.
    """
    if not git_dir.is_dir():
        raise StageError(f"mirror {git_dir} is missing")
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        raise StageError(f"{path} at {commit} not readable from {git_dir}: {reason}")
    return done.stdout


def _csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def redcap_metadata_csv(raw: bytes) -> bytes:
    """REDCap's JSON metadata (a list, or an object's ``metadata`` list) as its CSV export.

    Parameters
    ----------
    raw : bytes
        The JSON text.

    Returns
    -------
    bytes
        A header of the 18 API names and one row per field, values unchanged.
    """
    data = json.loads(raw)
    fields = data["metadata"] if isinstance(data, dict) else data
    return _csv_bytes(
        REDCAP_METADATA_FIELDS, [[f[k] for k in REDCAP_METADATA_FIELDS] for f in fields]
    )


def redcap_records_csv(raw: bytes) -> bytes:
    """An object's ``records`` list (REDCap's flat JSON records) as the flat CSV export.

    Parameters
    ----------
    raw : bytes
        The JSON text.

    Returns
    -------
    bytes
        The first record's keys as the header, then each record's values in order.
    """
    records = json.loads(raw)["records"]
    return _csv_bytes(list(records[0]), [list(r.values()) for r in records])


def produce(entry: dict[str, Any], source: dict[str, Any], mirror_root: Path) -> bytes:
    """The bytes of one manifest file entry.

    Parameters
    ----------
    entry : dict
        A ``files`` item of the manifest.
    source : dict
        Its ``sources`` item (repository and commit).
    mirror_root : Path
        Folder of the mirrors.

    Returns
    -------
    bytes
        The file's content.
    """
    transform = entry["transform"]
    if transform == "empty":
        return b""
    if transform == "literal":
        return str(entry["content"]).encode("utf-8")
    raw = git_show(mirror_dir(mirror_root, source["repository"]), source["commit"], entry["path"])
    if transform == "copy":
        return raw
    if transform == "redcap-metadata-csv":
        return redcap_metadata_csv(raw)
    if transform == "redcap-records-csv":
        return redcap_records_csv(raw)
    raise StageError(f"{entry['dest']}: unknown transform {transform!r}")


def _origin(entry: dict[str, Any], commit: str) -> str:
    transform = entry["transform"]
    if transform == "empty":
        return "empty: the source published no record export (dictionary only)"
    if transform == "literal":
        return "written here: REDCap import options the source uses for this file"
    how = {
        "copy": "copied byte for byte",
        "redcap-metadata-csv": "JSON metadata written as REDCap's CSV metadata export",
        "redcap-records-csv": "JSON `records` written as the flat CSV record export",
    }[transform]
    return f"`{entry['path']}` at `{commit}` ({how})"


def source_readme(source: dict[str, Any], files: list[dict[str, Any]]) -> str:
    """The README of one source folder, generated from the manifest.

    Parameters
    ----------
    source : dict
        The ``sources`` item.
    files : list of dict
        Its ``files`` items.

    Returns
    -------
    str
        Markdown: repository, commit, licence, what the files are, and one row per file.
    """
    name = source["folder"].rsplit("/", 1)[-1]
    lines = [
        f"# `{name}`: files from {source['repository']}",
        "",
        f"Repository: https://github.com/{source['repository']} at commit `{source['commit']}`.",
        "",
        f"Licence: {source['licence']}; the text is in `LICENSE` (the repository's "
        f"`{source['licence_path']}`).",
        "",
        source["about"],
        "",
        "Generated by `tools/stage_shared_fixtures.py` from `tools/shared_fixtures.json`; "
        "every file's sha256 is checked there.",
        "",
        "| project | file | origin |",
        "| --- | --- | --- |",
    ]
    for entry in files:
        project, _, file = entry["dest"].rpartition("/")
        lines.append(f"| `{project}` | `{file}` | {_origin(entry, source['commit'])} |")
    return "\n".join(lines) + "\n"


def index_readme(folder: str, sources: list[dict[str, Any]]) -> str:
    """The index README of a folder holding several sources.

    Parameters
    ----------
    folder : str
        The parent folder, relative to the output (e.g. ``redcap/real-projects``).
    sources : list of dict
        The sources directly under it.

    Returns
    -------
    str
        Markdown naming every source with its repository and licence.
    """
    lines = [
        f"# `{folder}`",
        "",
        "Third-party files, one folder per source; each folder's README says where every file "
        "came from and its LICENSE holds the source's licence. Rebuilt by "
        "`tools/stage_shared_fixtures.py` of peerlens.",
        "",
        "| source | repository | commit | licence |",
        "| --- | --- | --- | --- |",
    ]
    for s in sources:
        name = s["folder"].rsplit("/", 1)[-1]
        lines.append(f"| `{name}` | {s['repository']} | `{s['commit']}` | {s['licence']} |")
    return "\n".join(lines) + "\n"


def build(manifest: dict[str, Any], mirror_root: Path, root: Path) -> int:
    """Write every file, LICENSE and README of ``manifest`` under ``root``.

    Parameters
    ----------
    manifest : dict
        The parsed manifest.
    mirror_root : Path
        Folder of the mirrors.
    root : Path
        Where to write (a fresh folder).

    Returns
    -------
    int
        The number of data files written.

    Raises
    ------
    StageError
        On a missing mirror, commit or path, or a hash that differs from the manifest's.
    """
    sources = {s["folder"]: s for s in manifest["sources"]}
    for entry in manifest["files"]:
        source = sources[entry["source"]]
        data = produce(entry, source, mirror_root)
        digest = hashlib.sha256(data).hexdigest()
        dest = f"{entry['source']}/{entry['dest']}"
        if digest != entry["sha256"]:
            raise StageError(
                f"{dest}: sha256 {digest} differs from the manifest's {entry['sha256']}"
            )
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    parents: dict[str, list[dict[str, Any]]] = {}
    for folder, source in sources.items():
        licence = git_show(
            mirror_dir(mirror_root, source["repository"]), source["commit"], source["licence_path"]
        )
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "LICENSE").write_bytes(licence)
        files = [e for e in manifest["files"] if e["source"] == folder]
        (root / folder / "README.md").write_text(source_readme(source, files), encoding="utf-8")
        parents.setdefault(folder.rsplit("/", 1)[0], []).append(source)
    for parent, group in parents.items():
        (root / parent / "README.md").write_text(index_readme(parent, group), encoding="utf-8")
    return len(manifest["files"])


def stage(manifest_path: Path, mirror_root: Path, out: Path) -> int:
    """Build in a temporary folder beside ``out``, then move each top folder into ``out``.

    Parameters
    ----------
    manifest_path : Path
        The manifest JSON.
    mirror_root : Path
        Folder of the mirrors.
    out : Path
        The output folder (created; existing fixture folders of the manifest are refused).

    Returns
    -------
    int
        The number of data files written.
    """
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    tops = sorted({s["folder"].rsplit("/", 1)[0] for s in manifest["sources"]})
    clash = [t for t in tops if (out / t).exists()]
    if clash:
        raise StageError(f"{out / clash[0]} exists already: remove it or choose another --out")
    with tempfile.TemporaryDirectory(dir=out, prefix=".staging-") as tmp:
        count = build(manifest, mirror_root, Path(tmp))
        for top in tops:
            (out / top).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(tmp) / top), str(out / top))
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code (2 on a refusal)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)
    try:
        count = stage(args.manifest, args.mirror_root, args.out)
    except StageError as err:
        print(f"refused, nothing written: {err}", file=sys.stderr)
        return 2
    print(f"wrote {count} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
