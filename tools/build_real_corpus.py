"""Rebuild (or re-sample) the real-supporter development corpus from public-repository snapshots.

The corpus in ``benchmarks/story_data/real/`` holds sentences written or spoken by people
supporting someone (Reddit peer-support and confession-thread replies, counsellors' written
answers, counsellors' turns in motivational-interviewing and therapy-session transcripts).  Most
sources do not let us redistribute their text, so the repository holds only *keys*: for every item
the source, file, record, sentence index and the SHA-256 of the record and of the sentence
(``items.csv``).  This script rebuilds the text from
local snapshots of the source repositories and checks every hash, so the rebuilt sentences are
exactly the ones that were sampled.

Sentences are the units ``peerlens.narrative.split_sentences`` makes of a record's cleaned text,
so they match what the model sees.  If the splitter or a cleaning rule changes, the sentence
hashes stop matching and the build fails rather than handing annotators different sentences.

Commands
--------
``build`` (the one users need)::

    PYTHONPATH=src python tools/build_real_corpus.py build \\
        --snapshot reddit_mh7=/path/to/SocialMediaMining.git --snapshot ... [--out DIR]

or, with snapshots laid out as ``ROOT/<owner>+<name>/repo`` (how this workplace's fetch stores
them), ``--mirror-root ROOT``.  A snapshot is a git directory (bare, or a clone's ``.git``) that
contains the pinned commit; one that does not is refused.  Writes to ``DIR`` (default
``benchmarks/out/real_corpus/``, git-ignored):

- ``real_corpus.tsv``: item_id, source, arm, path, record_id, sentence_index, sentence, context;
- ``to_annotate.tsv``: item_id, context, sentence only (the blind annotation batch: nothing about
  the source or the sampling arm), in item_id order, which is a random order.

``blind`` writes one batch's blind annotation file (``--batch N --out FILE``): item_id,
sentence, context, rows shuffled with a fixed seed, and with ``--parts K`` also ``FILE``'s stem
``_part1`` ... ``_partK`` (consecutive slices, for annotators sharing a pass).  It refuses a path
inside the repository other than the git-ignored ``benchmarks/out/``: the files hold source text.
With ``--context-chars N`` the context is whole sentences around the target within N characters,
the target in ``⟦ ⟧``; ``--key FILE`` also writes item_id -> source, arm (for the integrator).

``sample`` (maintainers): draws the items anew from the snapshots and rewrites ``items.csv``;
deterministic for a given ``seed`` in ``sources.json``.  A batch with a ``selection`` file (a
committed list of sentence hashes that a scoring model picked, ``tools/select_by_score.py``)
draws exactly those sentences as its ``scored`` arm, so it too is redrawn identically.
Batches are drawn in order; a later batch never repeats a sentence (by SHA-256) of an earlier
one, so drawing batch 2 leaves batch 1's item ids and hashes as they were.  ``sample --append
N`` keeps the earlier batches' rows and draws only batch N, exactly as a full re-sample would,
from the snapshots of its sources alone.

Sources are CSV or Excel tables (a record per row, rows grouped, or with ``split_text`` the
comments a row joins with a separator), or texts read by paragraph: ``markdown`` (blank-line
paragraphs, ``#`` headings naming the section) and ``html_paragraphs`` (the ``<p>`` elements of
an HTML text, or of HTML held in a script), or ``json_threads`` (a JSON array of forum threads,
a row per post).  A comment file with no is-submitter flag can drop the post's author's own
comments through ``drop_post_author`` (a lookup in the posts table); a file that is one forum
thread drops its starter's posts through ``drop_thread_starter``.

Exit status 2 on any problem (missing snapshot, wrong commit, changed file, hash mismatch), with
every failing item listed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import io
import json
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from peerlens import PeerlensError
from peerlens.narrative.splitting import split_sentences

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "benchmarks/story_data/real"
DEFAULT_OUT = ROOT / "benchmarks/out/real_corpus"

#: Columns of ``items.csv`` (the committed keys; also the item -> source/arm map).
ITEM_COLUMNS = (
    "item_id",
    "batch",
    "source",
    "arm",
    "path",
    "record_id",
    "sentence_index",
    "record_sha256",
    "sentence_sha256",
)
#: Columns of the blind annotation file (``blind``): nothing about source, arm or pattern.
BLIND_COLUMNS = ("item_id", "sentence", "context")
#: Columns of the integrator's key for a blind batch (``blind --key``).
KEY_COLUMNS = ("item_id", "source", "arm")
_DISTINCT = frozenset({"source", "batch"})
#: A record's turn is shown whole up to this many sentences, else this window around the target.
CONTEXT_MAX_SENTENCES = 15
CONTEXT_WINDOW = 5
_HAS_LETTER = re.compile(r"[^\W\d_]")
_FORMATS = frozenset({"csv", "xlsx", "markdown", "html_paragraphs", "json_threads"})


class RealCorpusError(PeerlensError):
    """A snapshot, source file or item does not match what the committed keys pin down."""


@dataclass(frozen=True)
class Quota:
    """How many sentences one batch draws from one source, per arm."""

    n_random: int
    n_targeted: int
    n_scored: int = 0  # sentences of the batch's selection file (its ``scored`` arm)


@dataclass(frozen=True)
class BatchSpec:
    """One sampling batch as described in ``sources.json`` (``batches``).

    ``distinct`` is ``"source"`` when a sentence is drawn at most once per source (batch 1) or
    ``"batch"`` when at most once in the whole batch, whatever the source.
    """

    batch: int
    distinct: str
    #: the ``scored`` arm's sentences, (source, sentence SHA-256, arm name) in file order, read
    #: from the batch's ``selection`` file (``tools/select_by_score.py`` writes it)
    selection: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class TargetPattern:
    """One search pattern of the targeted arm (``patterns.json``)."""

    name: str
    regex: re.Pattern[str]
    kind: str  # what it aims at: upward, downward, connection, look-alike, mixed
    batches: frozenset[int]


@dataclass(frozen=True)
class PostAuthors:
    """Where a comment file's posts name their authors, so the post author's own comments drop.

    For comment files with no is-submitter flag: each comment's ``post`` column is looked up
    (by ``posts_id``) in the posts table pinned in ``files`` (comment file -> posts file, blob
    id), and a comment whose ``author`` is that post's ``posts_author`` is not eligible.
    """

    post: str
    author: str
    posts_id: str
    posts_author: str
    files: Mapping[str, tuple[str, str]]  # comment file -> (posts file, its git blob id)


@dataclass(frozen=True)
class SourceSpec:
    """One source as described in ``sources.json``."""

    id: str
    repo: str
    commit: str
    files: Mapping[str, str]  # path -> git blob id at ``commit``
    format: str
    record_id: tuple[str, ...]
    text: str
    clean: str
    keep: Mapping[str, tuple[str, ...]]
    drop: Mapping[str, tuple[str, ...]]
    drop_match: Mapping[str, re.Pattern[str]]
    drop_repeated: int | None
    samples: Mapping[int, Quota]  # batch -> quota; a batch the source is not in draws nothing
    # a source whose rows are single sentences of a longer reply: rows sharing these columns are
    # one record, their texts joined line by line in ``order_by`` (numeric) order
    group_by: tuple[str, ...] = ()
    order_by: str | None = None
    # a row whose text holds several comments joined by this separator: each is its own record
    # (id: the row's record id, ``:`` and the comment's 1-based position in the row)
    split_text: str | None = None
    drop_post_author: PostAuthors | None = None
    # a file that is one forum thread, oldest post first: rows whose value in this column (the
    # poster) is the first data row's (the thread's starter) are not eligible
    drop_thread_starter: str | None = None
    # a file that holds some rows more than once (a scrape repeated, the score column updated):
    # with ``"same_text"`` a row whose record id was seen before is skipped when its text is the
    # earlier row's exactly, and refused when it differs; without it a repeated id is refused
    repeated_ids: str | None = None


@dataclass(frozen=True)
class Unit:
    """One sentence of one record: the smallest thing the corpus points to."""

    source: str
    path: str
    record_id: str
    sentence_index: int
    sentence: str
    record_sha256: str


def sha256_text(text: str) -> str:
    """SHA-256 (hex) of ``text`` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- specs -------------------------------------------------------------------------------------


def load_sources(path: Path) -> tuple[int, list[SourceSpec]]:
    """Read ``sources.json``: the sampling seed and the source specs, validated."""
    data = json.loads(path.read_text(encoding="utf-8"))
    declared = load_batches(path)
    batches = {b.batch for b in declared}
    specs: list[SourceSpec] = []
    for n, raw in enumerate(data["sources"]):
        where = f"{path}: sources[{n}]"
        try:
            spec = SourceSpec(
                id=str(raw["id"]),
                repo=str(raw["repo"]),
                commit=str(raw["commit"]),
                files={str(k): str(v) for k, v in raw["files"].items()},
                format=str(raw["format"]),
                record_id=tuple(str(c) for c in raw["record_id"]),
                text=str(raw["text"]),
                clean=str(raw["clean"]),
                keep={str(k): tuple(map(str, v)) for k, v in raw.get("keep", {}).items()},
                drop={str(k): tuple(map(str, v)) for k, v in raw.get("drop", {}).items()},
                drop_match={str(k): re.compile(v) for k, v in raw.get("drop_match", {}).items()},
                drop_repeated=None
                if raw.get("drop_repeated") is None
                else int(raw["drop_repeated"]),
                samples={
                    int(batch): Quota(
                        int(q["n_random"]), int(q["n_targeted"]), int(q.get("n_scored", 0))
                    )
                    for batch, q in raw["samples"].items()
                },
                group_by=tuple(str(c) for c in raw.get("group_by", ())),
                order_by=None if raw.get("order_by") is None else str(raw["order_by"]),
                split_text=None if raw.get("split_text") is None else str(raw["split_text"]),
                drop_post_author=_post_authors(raw.get("drop_post_author")),
                drop_thread_starter=None
                if raw.get("drop_thread_starter") is None
                else str(raw["drop_thread_starter"]),
                repeated_ids=None if raw.get("repeated_ids") is None else str(raw["repeated_ids"]),
            )
        except KeyError as exc:
            raise RealCorpusError(f"{where}: missing key {exc}") from exc
        unknown = sorted(set(spec.samples) - batches)
        if unknown:
            raise RealCorpusError(f"{where}: samples for undeclared batch(es) {unknown}")
        if not re.fullmatch(r"[0-9a-f]{40}", spec.commit):
            raise RealCorpusError(f"{where}: commit {spec.commit!r} is not a 40-hex git commit id")
        if spec.format not in _FORMATS:
            raise RealCorpusError(f"{where}: format {spec.format!r} not in {sorted(_FORMATS)}")
        if spec.repeated_ids not in (None, "same_text"):
            raise RealCorpusError(
                f'{where}: repeated_ids {spec.repeated_ids!r} is not "same_text" (or absent)'
            )
        if spec.clean not in _CLEANERS:
            raise RealCorpusError(f"{where}: clean {spec.clean!r} not in {sorted(_CLEANERS)}")
        if bool(spec.group_by) != (spec.order_by is not None):
            raise RealCorpusError(f"{where}: group_by and order_by go together")
        if spec.split_text == "" or (spec.split_text is not None and spec.group_by):
            raise RealCorpusError(f"{where}: split_text must be non-empty and without group_by")
        if spec.drop_thread_starter == "":
            raise RealCorpusError(f"{where}: drop_thread_starter must name a column")
        lookup = spec.drop_post_author
        if lookup is not None and set(lookup.files) - set(spec.files):
            unknown_files = sorted(set(lookup.files) - set(spec.files))
            raise RealCorpusError(f"{where}: drop_post_author names unread files {unknown_files}")
        specs.append(spec)
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise RealCorpusError(f"{path}: source ids are not unique: {ids}")
    for batch in declared:
        listed = Counter(source for source, _, _ in batch.selection)
        quotas = {s.id: s.samples[batch.batch].n_scored for s in specs if batch.batch in s.samples}
        for source in sorted(set(listed) | {s for s, n in quotas.items() if n}):
            if listed.get(source, 0) != quotas.get(source, 0):
                raise RealCorpusError(
                    f"{path}: batch {batch.batch}, source {source!r}: n_scored is "
                    f"{quotas.get(source, 0)} but its selection lists {listed.get(source, 0)}"
                )
    return int(data["seed"]), specs


def _post_authors(raw: Mapping[str, Any] | None) -> PostAuthors | None:
    """``drop_post_author`` of a source in ``sources.json`` (KeyError naming a missing key)."""
    if raw is None:
        return None
    try:
        return PostAuthors(
            post=str(raw["post"]),
            author=str(raw["author"]),
            posts_id=str(raw["posts_id"]),
            posts_author=str(raw["posts_author"]),
            files={str(k): (str(v["path"]), str(v["blob"])) for k, v in raw["files"].items()},
        )
    except KeyError as exc:
        raise KeyError(f"drop_post_author.{exc.args[0]}") from exc


def load_batches(path: Path) -> list[BatchSpec]:
    """Read the ``batches`` of ``sources.json``, in drawing order (batch 1, 2, ...)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: list[BatchSpec] = []
    for key, raw in data["batches"].items():
        selection = (
            () if "selection" not in raw else _read_selection(path.parent / raw["selection"])
        )
        spec = BatchSpec(batch=int(key), distinct=str(raw["distinct"]), selection=selection)
        if spec.distinct not in _DISTINCT:
            raise RealCorpusError(
                f"{path}: batches.{key}.distinct {spec.distinct!r} not in {sorted(_DISTINCT)}"
            )
        out.append(spec)
    numbers = [b.batch for b in out]
    if numbers != list(range(1, len(out) + 1)):
        raise RealCorpusError(f"{path}: batches must be numbered 1, 2, ... in order: {numbers}")
    return out


#: Columns of a batch's selection file (``selection`` in ``sources.json``); more may follow.
SELECTION_COLUMNS = ("source", "sentence_sha256", "arm")


def _read_selection(path: Path) -> tuple[tuple[str, str, str], ...]:
    """A batch's selection file: (source, sentence SHA-256, arm) per row, in file order."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            columns = tuple(reader.fieldnames or ())
            if columns[: len(SELECTION_COLUMNS)] != SELECTION_COLUMNS:
                raise RealCorpusError(
                    f"{path}: columns {list(columns)}, expected {list(SELECTION_COLUMNS)} first"
                )
            rows = [(r["source"], r["sentence_sha256"], r["arm"]) for r in reader]
    except OSError as exc:
        raise RealCorpusError(f"{path}: cannot read the selection file ({exc})") from exc
    seen: set[str] = set()
    for n, (source, digest, arm) in enumerate(rows, start=2):
        if not source or not arm or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise RealCorpusError(
                f"{path}, row {n}: needs a source, a 64-hex sentence_sha256 and an arm"
            )
        if digest in seen:
            raise RealCorpusError(f"{path}, row {n}: sentence {digest} is selected twice")
        seen.add(digest)
    return tuple(rows)


def load_patterns(path: Path) -> dict[str, TargetPattern]:
    """Read ``patterns.json``: name -> pattern (compiled case-insensitive), in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, TargetPattern] = {}
    for name, raw in data["patterns"].items():
        try:
            regex = re.compile(raw["regex"], re.IGNORECASE)
        except (KeyError, TypeError, re.error) as exc:
            raise RealCorpusError(f"{path}: pattern {name!r}: {exc}") from exc
        out[name] = TargetPattern(
            name=name,
            regex=regex,
            kind=str(raw["kind"]),
            batches=frozenset(int(b) for b in raw["batches"]),
        )
    return out


def patterns_for(patterns: Mapping[str, TargetPattern], batch: int) -> dict[str, re.Pattern[str]]:
    """The patterns a batch's targeted arm uses, name -> regex, in file order."""
    return {name: p.regex for name, p in patterns.items() if batch in p.batches}


# --- snapshots ---------------------------------------------------------------------------------


class Snapshot:
    """A local git directory holding a source repository's history (read with ``git``).

    Parameters
    ----------
    git_dir : Path
        A bare repository or a clone (its ``.git`` is used).

    Raises
    ------
    RealCorpusError
        If ``git_dir`` is not a git directory.
    """

    def __init__(self, git_dir: Path) -> None:
        git_dir = Path(git_dir)
        if (git_dir / ".git").exists():
            git_dir = git_dir / ".git"
        self.git_dir = git_dir
        if self._git("rev-parse", "--git-dir", check=False) is None:
            raise RealCorpusError(f"{git_dir}: not a git directory")

    def _git(self, *args: str, check: bool = True) -> bytes | None:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            if check:
                raise RealCorpusError(
                    f"{self.git_dir}: git {' '.join(args)} failed: "
                    f"{proc.stderr.decode(errors='replace').strip()}"
                )
            return None
        return proc.stdout

    def head(self) -> str:
        """The commit the snapshot's HEAD points to (or ``"?"`` when it has none)."""
        out = self._git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        return out.decode().strip() if out else "?"

    def require_commit(self, commit: str, source: str) -> None:
        """Refuse a snapshot that does not contain ``commit``."""
        if self._git("cat-file", "-e", f"{commit}^{{commit}}", check=False) is None:
            raise RealCorpusError(
                f"source {source}: snapshot {self.git_dir} is at {self.head()} and does not "
                f"contain the pinned commit {commit}; fetch the repository at that commit"
            )

    def read(self, commit: str, path: str, blob: str, source: str) -> bytes:
        """Bytes of ``path`` at ``commit``, after checking its blob id is ``blob``."""
        out = self._git("rev-parse", "--verify", "--quiet", f"{commit}:{path}", check=False)
        found = out.decode().strip() if out else None
        if found is None:
            raise RealCorpusError(f"source {source}: {path} does not exist at commit {commit}")
        if found != blob:
            raise RealCorpusError(
                f"source {source}: {path} at {commit} is blob {found}, the corpus pins {blob}"
            )
        data = self._git("cat-file", "blob", blob, check=False)
        if data is None:
            raise RealCorpusError(
                f"source {source}: the content of {path} (blob {blob}) is missing from "
                f"snapshot {self.git_dir} (some snapshots leave out large or LFS files)"
            )
        return data


def snapshots_from_args(
    specs: Sequence[SourceSpec],
    pairs: Sequence[str],
    mirror_root: Path | None,
    needed: Iterable[str] | None = None,
) -> dict[str, Snapshot]:
    """Map source id -> Snapshot from ``ID=PATH`` pairs and/or a mirror root.

    Only the sources in ``needed`` (default: all) must have one: rebuilding batches 1-2 does not
    need the snapshots of sources that only later batches draw from.
    """
    given: dict[str, Path] = {}
    for pair in pairs:
        source, sep, location = pair.partition("=")
        if not sep:
            raise RealCorpusError(f"--snapshot {pair!r}: expected SOURCE_ID=GIT_DIR")
        given[source] = Path(location)
    known = {s.id for s in specs}
    unknown = sorted(set(given) - known)
    if unknown:
        raise RealCorpusError(f"--snapshot names unknown sources {unknown}; known: {sorted(known)}")
    wanted = known if needed is None else set(needed)
    out: dict[str, Snapshot] = {}
    for spec in specs:
        if spec.id not in wanted:
            continue
        git_dir = given.get(spec.id)
        if git_dir is None and mirror_root is not None:
            git_dir = mirror_root / spec.repo.replace("/", "+") / "repo"
        if git_dir is None:
            raise RealCorpusError(
                f"no snapshot for source {spec.id} ({spec.repo}): give --snapshot "
                f"{spec.id}=GIT_DIR or --mirror-root"
            )
        out[spec.id] = Snapshot(git_dir)
    return out


# --- records -----------------------------------------------------------------------------------


def _clean_plain(raw: str) -> str:
    return raw.strip()


def _clean_reddit(raw: str) -> str:
    # Reddit's API returns HTML-escaped markdown; lines starting with ">" quote someone else
    # (usually the help-seeker), so they are not the supporter's own words.
    text = html.unescape(raw).replace("\u200b", "").replace("\xa0", " ")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()


_HTML_HIDDEN = re.compile(r"<!--.*?-->|<(style|script|xml)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BREAK = re.compile(r"<br\s*/?>|</p>|</li>|</div>|</h\d>|<li\b[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _clean_html(raw: str) -> str:
    # In HTML a line break in the source is only a space; paragraphs, breaks and list items are
    # the real line breaks, so the splitter sees them as separate messages.  Comments (Word's
    # pasted <!--[if gte mso 9]> blocks), style and script are not text.
    text = _SPACE.sub(" ", _HTML_HIDDEN.sub("", raw))
    text = html.unescape(_HTML_TAG.sub("", _HTML_BREAK.sub("\n", text))).replace("\xa0", " ")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


_ESCAPED_CODEPOINT = re.compile(r"<U\+([0-9A-Fa-f]{4,6})>")


def _unescape_codepoint(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    if 0x80 <= code <= 0x9F:  # a Windows-1252 byte read as Latin-1: 0x92 is a right quote
        return bytes([code]).decode("cp1252", errors="replace")
    return chr(code)


def _clean_escaped(raw: str) -> str:
    # CL-Aff OffMyChest was written out by R, which left non-ASCII characters as "<U+0092>"
    text = _ESCAPED_CODEPOINT.sub(_unescape_codepoint, raw)
    return _clean_reddit(text)


_BYTES_LITERAL = re.compile(r"b(['\"])(.*)\1", re.DOTALL)
_BYTE_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[\\'\"nrt])")
_SIMPLE_ESCAPES = {"\\": b"\\", "'": b"'", '"': b'"', "n": b"\n", "r": b"\r", "t": b"\t"}


def _clean_bytes_literal(raw: str) -> str:
    # a forum scrape that wrote each post as Python's repr of its UTF-8 bytes, e.g.
    # b'I\'m ok\xe2\x80\xa6'
    # (its escapes are undone by hand, so a stray backslash stays a backslash)
    literal = _BYTES_LITERAL.fullmatch(raw.strip())
    body = literal.group(2) if literal else raw
    data, pos = bytearray(), 0
    for escape in _BYTE_ESCAPE.finditer(body):
        data += body[pos : escape.start()].encode("utf-8")
        code = escape.group(1)
        data += bytes([int(code[1:], 16)]) if code[0] == "x" else _SIMPLE_ESCAPES[code]
        pos = escape.end()
    data += body[pos:].encode("utf-8")
    text = data.decode("utf-8", errors="replace").replace("\xa0", " ")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!\"'])")
_MD_QUOTE = re.compile(r"^\s*(?:>\s?)+")
_MD_EMPHASIS = re.compile(r"(?<![\w*])[*_]+(?=\S)|(?<=\S)[*_]+(?![\w*])")


def _clean_markdown(raw: str) -> str:
    # a paragraph of a Markdown book: hard-wrapped lines are one paragraph (joined by spaces);
    # block-quote markers, backslash escapes (\" for ") and emphasis markers (*word*, _word_)
    # are not text
    lines = (_MD_QUOTE.sub("", line).strip() for line in raw.splitlines())
    text = " ".join(line for line in lines if line)
    return _MD_EMPHASIS.sub("", _MD_ESCAPE.sub(r"\1", text)).strip()


_CLEANERS = {
    "plain": _clean_plain,
    "markdown": _clean_markdown,
    "reddit": _clean_reddit,
    "html": _clean_html,
    "escaped": _clean_escaped,
    "bytes_literal": _clean_bytes_literal,
}
#: Pseudo-column for ``record_id``: the 1-based data row number (for files with no unique key).
ROW_NUMBER = "#row"


# The paragraph formats (``markdown``, ``html_paragraphs``) give rows with the columns
# ``section``, ``paragraph`` (1-based, per file) and ``text``.
_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_HTML_HEADING = re.compile(r"<h(\d)\b[^>]*>(.*?)</h\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_PARAGRAPH = re.compile(r"<p\b[^>]*>(.*?)</p\s*>", re.IGNORECASE | re.DOTALL)


def _markdown_paragraphs(text: str) -> Iterable[dict[str, str]]:
    """Paragraphs of a Markdown text: blank-line separated; headings name the section."""
    section, lines, n = "", [], 0
    for line in [*text.splitlines(), ""]:
        heading = _MD_HEADING.match(line)
        if heading is None and line.strip():
            lines.append(line)
            continue
        if lines:
            n += 1
            yield {"section": section, "paragraph": str(n), "text": "\n".join(lines)}
            lines = []
        if heading is not None:
            section = heading.group(1)


def _html_paragraphs(text: str) -> Iterable[dict[str, str]]:
    """``<p>`` elements of an HTML text (or of HTML held in a script), in order; the nearest
    heading before a paragraph names its section.  The inner HTML is the row's text."""
    headings = [(m.start(), _clean_html(m.group(2))) for m in _HTML_HEADING.finditer(text)]
    for n, match in enumerate(_HTML_PARAGRAPH.finditer(text), start=1):
        before = [title for at, title in headings if at < match.start()]
        yield {
            "section": before[-1] if before else "",
            "paragraph": str(n),
            "text": match.group(1),
        }


def _json_thread_posts(data: bytes, where: str) -> Iterable[dict[str, str]]:
    """Posts of a JSON array of forum threads, a row each: the thread's scalar fields, ``thread``
    (1-based position of the thread in the file), ``position`` (1-based, in the thread's ``posts``
    list, the first being the starter's) and ``text``."""
    try:
        threads = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RealCorpusError(f"{where}: not a UTF-8 JSON file ({exc})") from exc
    if not isinstance(threads, list):
        raise RealCorpusError(f"{where}: not a JSON array of threads")
    for t, thread in enumerate(threads, start=1):
        posts = thread.get("posts") if isinstance(thread, dict) else None
        if not isinstance(posts, list) or not all(isinstance(p, str) for p in posts):
            raise RealCorpusError(f"{where}: thread {t} has no list of text posts")
        fields = {k: str(v) for k, v in thread.items() if isinstance(v, str | int | float)}
        for n, post in enumerate(posts, start=1):
            yield {**fields, "thread": str(t), "position": str(n), "text": post}


def _rows(data: bytes, fmt: str, where: str) -> Iterable[dict[str, str]]:
    if fmt == "json_threads":
        yield from _json_thread_posts(data, where)
        return
    if fmt in ("markdown", "html_paragraphs"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RealCorpusError(f"{where}: not UTF-8 ({exc})") from exc
        yield from (_markdown_paragraphs if fmt == "markdown" else _html_paragraphs)(text)
        return
    if fmt == "csv":
        # some answers embed images as data URIs: far past the csv module's default field limit
        csv.field_size_limit(1 << 30)
        # utf-8-sig: a byte-order mark is not part of the first column's name
        yield from csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        return
    import openpyxl  # a peerlens dependency; imported here as only xlsx sources need it

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise RealCorpusError(f"{where}: empty worksheet")
        # name empty header cells as pandas does ("Unnamed: 0"), as sources.json uses them
        names = [f"Unnamed: {i}" if h in (None, "") else str(h) for i, h in enumerate(header)]
        for row in rows:
            yield {n: "" if v is None else str(v) for n, v in zip(names, row, strict=False)}
    finally:
        book.close()


def _post_author_of(spec: SourceSpec, snapshot: Snapshot, path: str) -> dict[str, str] | None:
    """Post id -> the post's author, for a comment file with a ``drop_post_author`` lookup."""
    lookup = spec.drop_post_author
    if lookup is None or path not in lookup.files:
        return None
    posts_path, blob = lookup.files[path]
    where = f"source {spec.id}: {posts_path}"
    authors: dict[str, str] = {}
    for n, row in enumerate(
        _rows(snapshot.read(spec.commit, posts_path, blob, spec.id), "csv", where)
    ):
        missing = [c for c in (lookup.posts_id, lookup.posts_author) if c not in row]
        if missing:
            raise RealCorpusError(f"{where}: no column(s) {missing}")
        post = row[lookup.posts_id]
        if authors.setdefault(post, row[lookup.posts_author]) != row[lookup.posts_author]:
            raise RealCorpusError(f"{where}: data row {n + 1}: post {post} has two authors")
    return authors


#: Author values that name nobody (a deleted account): never taken for the post's author.
_NO_AUTHOR = frozenset({"", "None", "[deleted]"})


def read_records(spec: SourceSpec, snapshot: Snapshot) -> dict[tuple[str, str], str]:
    """The cleaned text of every eligible record: ``(path, record_id) -> text``, in file order.

    A record is eligible when every ``keep`` column holds one of its values, no ``drop`` column
    holds one of its values, no ``drop_match`` column matches its regular expression (whole
    value), with ``drop_post_author`` it is not by the author of the post it comments on, with
    ``drop_thread_starter`` it is not by the poster of its file's first row, its cleaned text is
    not empty and, with ``drop_repeated`` = n, that text does not occur n or
    more times in the source (bot messages, moderators' templates, spam).  With ``group_by``,
    the eligible rows sharing those columns' values are one record (id: the values joined by
    ``:``), their cleaned texts one line each in ``order_by`` order.  With ``split_text``, each
    piece of a row's text between separators is a record of its own (id: the row's, ``:`` and
    the piece's 1-based position), and a piece that is a ``drop`` value of the text column
    (``[removed]``) is dropped on its own.
    """
    snapshot.require_commit(spec.commit, spec.id)
    clean = _CLEANERS[spec.clean]
    records: dict[tuple[str, str], str] = {}
    lookup = spec.drop_post_author
    for path, blob in spec.files.items():
        where = f"source {spec.id}: {path}"
        data = snapshot.read(spec.commit, path, blob, spec.id)
        post_author = _post_author_of(spec, snapshot, path)
        groups: dict[str, list[tuple[float, str]]] = {}
        seen: dict[tuple[str, str], str] = {}  # record key -> raw text of its first row
        starter: str | None = None
        for n, row in enumerate(_rows(data, spec.format, where)):
            row = {**row, ROW_NUMBER: str(n + 1)}
            needed = (*spec.record_id, spec.text, *spec.group_by, *filter(None, [spec.order_by]))
            if spec.drop_thread_starter is not None:
                needed = (*needed, spec.drop_thread_starter)
            if post_author is not None and lookup is not None:
                needed = (*needed, lookup.post, lookup.author)
            missing = [c for c in needed if c not in row]
            if missing:
                raise RealCorpusError(f"{where}: no column(s) {missing}")
            if spec.drop_thread_starter is not None:
                if n == 0:
                    starter = row[spec.drop_thread_starter]
                if starter not in _NO_AUTHOR and row[spec.drop_thread_starter] == starter:
                    continue
            if any(row.get(c) not in v for c, v in spec.keep.items()):
                continue
            if any(row.get(c) in v for c, v in spec.drop.items()):
                continue
            if any(rx.fullmatch(row.get(c, "")) for c, rx in spec.drop_match.items()):
                continue
            if post_author is not None and lookup is not None:
                author = row[lookup.author]
                if author not in _NO_AUTHOR and post_author.get(row[lookup.post]) == author:
                    continue
            record_id = ":".join(row[c] for c in spec.record_id)
            if spec.split_text is None:
                pieces = [(record_id, row[spec.text])]
            else:
                dropped = spec.drop.get(spec.text, ())
                pieces = [
                    (f"{record_id}:{k}", piece)
                    for k, piece in enumerate(row[spec.text].split(spec.split_text), start=1)
                    if piece.strip() not in dropped
                ]
            for piece_id, raw in pieces:
                text = clean(raw)
                if not text:
                    continue
                if spec.group_by and spec.order_by is not None:
                    try:
                        order = float(row[spec.order_by])
                    except ValueError as exc:
                        raise RealCorpusError(
                            f"{where}: data row {n + 1}: {spec.order_by} "
                            f"{row[spec.order_by]!r} is not a number"
                        ) from exc
                    group = ":".join(row[c] for c in spec.group_by)
                    groups.setdefault(group, []).append((order, text))
                    continue
                key = (path, piece_id)
                if key in seen:
                    if spec.repeated_ids == "same_text" and seen[key] == raw:
                        continue
                    what = "with another text" if spec.repeated_ids else ""
                    raise RealCorpusError(
                        f"{where}: data row {n + 1}: record id {key[1]} repeats {what}".rstrip()
                    )
                seen[key] = raw
                records[key] = text
        for group, lines in groups.items():
            records[(path, group)] = "\n".join(text for _, text in sorted(lines))
    if spec.drop_repeated is not None:
        counts = Counter(records.values())
        records = {k: t for k, t in records.items() if counts[t] < spec.drop_repeated}
    return records


def units_of(source: str, records: Mapping[tuple[str, str], str]) -> list[Unit]:
    """Every sentence of every record, as the project's splitter cuts it."""
    units: list[Unit] = []
    for (path, record_id), text in records.items():
        record_sha = sha256_text(text)
        for i, sentence in enumerate(split_sentences(text)):
            units.append(Unit(source, path, record_id, i, sentence, record_sha))
    return units


# --- sampling ----------------------------------------------------------------------------------


def _normalise(sentence: str) -> str:
    return sentence.lower().replace("\u2019", "'").replace("\u2018", "'")


def _rng_key(seed: int, batch: int, what: str) -> str:
    # batch 1 was drawn before there were batches: its keys stay as they were, so that
    # re-sampling reproduces its items exactly
    return f"{seed}:{what}" if batch == 1 else f"{seed}:batch{batch}:{what}"


def undrawn_pool(
    units: Sequence[Unit], exclude: frozenset[str] | set[str] = frozenset()
) -> tuple[list[Unit], list[str]]:
    """A source's distinct sentences that contain a letter and are not in ``exclude``.

    Returns the units (first occurrence of each sentence, in record order) and their SHA-256s.
    This is the pool every arm of a batch draws from.
    """
    pool: list[Unit] = []
    digests: list[str] = []
    seen: set[str] = set()
    for unit in units:
        digest = sha256_text(unit.sentence)
        if digest in seen or digest in exclude or not _HAS_LETTER.search(unit.sentence):
            continue
        seen.add(digest)
        pool.append(unit)
        digests.append(digest)
    return pool, digests


def sample_source(
    spec: SourceSpec,
    units: Sequence[Unit],
    patterns: Mapping[str, re.Pattern[str]],
    seed: int,
    batch: int = 1,
    exclude: frozenset[str] | set[str] = frozenset(),
    selected: Sequence[tuple[str, str]] = (),
) -> list[tuple[Unit, str]]:
    """Draw the scored, the random and the targeted arm of one source for one batch.

    The pool is the source's distinct sentences that contain a letter and whose SHA-256 is not
    in ``exclude`` (sentences already drawn by earlier batches, and for a batch distinct across
    sources by earlier sources).  The scored arm is ``selected`` ((SHA-256, arm name) pairs
    from the batch's selection file), each of which must be in the pool; its items' arm is
    ``scored:<name>``.  The random arm is a uniform sample (without replacement) of the rest of
    the pool, so its label shares estimate the base rates of the source's sentences not yet
    drawn (and not selected).  The targeted arm is drawn from the remaining distinct sentences:
    patterns take turns (in file order), each adding one sentence drawn at random from those it
    matches, until ``n_targeted`` are drawn or no pattern has matches left.  A sentence matched
    by several patterns counts for the pattern that drew it.

    Raises
    ------
    RealCorpusError
        If a selected sentence is not in the pool (drawn before, or not in this snapshot).
    """
    quota = spec.samples.get(batch)
    if quota is None:
        return []
    rng = random.Random(_rng_key(seed, batch, spec.id))
    pool, digests = undrawn_pool(units, exclude)
    where = {digest: i for i, digest in enumerate(digests)}
    drawn: list[tuple[Unit, str]] = []
    chosen: set[int] = set()
    for digest, arm in selected:
        i = where.get(digest)
        if i is None:
            raise RealCorpusError(
                f"batch {batch}, source {spec.id}: selected sentence {digest} is not among "
                "the source's undrawn sentences (drawn by an earlier batch, or not in this "
                "snapshot)"
            )
        chosen.add(i)
        drawn.append((pool[i], f"scored:{arm}"))
    rest = [i for i in range(len(pool)) if i not in chosen]
    picked = rng.sample(rest, min(quota.n_random, len(rest)))
    chosen.update(picked)
    drawn.extend((pool[i], "random") for i in picked)
    normalised = [_normalise(u.sentence) for u in pool]
    queues: dict[str, list[int]] = {}
    for name, pattern in patterns.items():
        matches = [i for i, s in enumerate(normalised) if i not in chosen and pattern.search(s)]
        rng.shuffle(matches)
        queues[name] = matches
    n_targeted = 0
    while n_targeted < quota.n_targeted and any(queues.values()):
        for name, queue in queues.items():
            while queue and queue[-1] in chosen:
                queue.pop()
            if not queue or n_targeted >= quota.n_targeted:
                continue
            i = queue.pop()
            chosen.add(i)
            drawn.append((pool[i], f"targeted:{name}"))
            n_targeted += 1
    return drawn


def _draw_batch(
    specs: Sequence[SourceSpec],
    units: Mapping[str, Sequence[Unit]],
    patterns: Mapping[str, TargetPattern],
    seed: int,
    batch: BatchSpec,
    drawn_before: set[str],
) -> list[tuple[Unit, str]]:
    """One batch's draws from every source, shuffled; never a sentence in ``drawn_before``."""
    drawn: list[tuple[Unit, str]] = []
    exclude = set(drawn_before)
    targets = patterns_for(patterns, batch.batch)
    for spec in specs:
        selected = [(digest, arm) for src, digest, arm in batch.selection if src == spec.id]
        mine = sample_source(
            spec, units.get(spec.id, ()), targets, seed, batch.batch, exclude, selected
        )
        if batch.distinct == "batch":
            exclude.update(sha256_text(unit.sentence) for unit, _ in mine)
        drawn.extend(mine)
    random.Random(_rng_key(seed, batch.batch, "order")).shuffle(drawn)
    return drawn


def _item_rows(
    drawn: Iterable[tuple[int, Unit, str]], start: int, width: int
) -> list[dict[str, str]]:
    return [
        {
            "item_id": f"item{n:0{width}d}",
            "batch": str(batch),
            "source": unit.source,
            "arm": arm,
            "path": unit.path,
            "record_id": unit.record_id,
            "sentence_index": str(unit.sentence_index),
            "record_sha256": unit.record_sha256,
            "sentence_sha256": sha256_text(unit.sentence),
        }
        for n, (batch, unit, arm) in enumerate(drawn, start=start)
    ]


def sample_items(
    specs: Sequence[SourceSpec],
    snapshots: Mapping[str, Snapshot],
    patterns: Mapping[str, TargetPattern],
    seed: int,
    batches: Sequence[BatchSpec],
) -> list[dict[str, str]]:
    """Draw every batch's items, batch by batch, and number them batch after batch.

    Within a batch all sources' items are shuffled together and numbered in that order (item
    ids continue from the previous batch), so an item id says nothing about source or arm.  A
    batch never draws a sentence whose SHA-256 an earlier batch drew (from any source).
    """
    units = {s.id: units_of(s.id, read_records(s, snapshots[s.id])) for s in specs}
    per_batch: list[tuple[int, list[tuple[Unit, str]]]] = []
    drawn_before: set[str] = set()
    for batch in batches:
        drawn = _draw_batch(specs, units, patterns, seed, batch, drawn_before)
        drawn_before.update(sha256_text(unit.sentence) for unit, _ in drawn)
        per_batch.append((batch.batch, drawn))
    total = sum(len(d) for _, d in per_batch)
    flat = ((b, u, a) for b, drawn in per_batch for u, a in drawn)
    return _item_rows(flat, start=1, width=max(5, len(str(total))))


def append_batch(
    items: Sequence[Mapping[str, str]],
    specs: Sequence[SourceSpec],
    snapshots: Mapping[str, Snapshot],
    patterns: Mapping[str, TargetPattern],
    seed: int,
    batches: Sequence[BatchSpec],
    batch: int,
) -> list[dict[str, str]]:
    """``items`` with one new batch drawn after them, exactly as ``sample_items`` would draw it.

    The earlier batches' rows are kept as they are (their sentence hashes are what a redraw
    would exclude), so only the sources the new batch draws from need a snapshot.

    Raises
    ------
    RealCorpusError
        If ``items`` already holds the batch or lacks an earlier one, or numbering on would
        change the width of the existing item ids.
    """
    wanted = next((b for b in batches if b.batch == batch), None)
    if wanted is None:
        raise RealCorpusError(f"batch {batch} is not declared in sources.json")
    present = {int(it["batch"]) for it in items}
    if batch in present or present != set(range(1, batch)):
        raise RealCorpusError(
            f"items.csv holds batches {sorted(present)}: appending batch {batch} needs "
            f"exactly batches 1-{batch - 1}"
        )
    drawing = [s for s in specs if batch in s.samples]
    units = {s.id: units_of(s.id, read_records(s, snapshots[s.id])) for s in drawing}
    drawn_before = {it["sentence_sha256"] for it in items}
    drawn = _draw_batch(drawing, units, patterns, seed, wanted, drawn_before)
    width = max(5, len(str(len(items) + len(drawn))))
    if items and len(items[0]["item_id"]) != len("item") + width:
        raise RealCorpusError(f"numbering on to {len(items) + len(drawn)} widens the item ids")
    new = _item_rows(((batch, u, a) for u, a in drawn), start=len(items) + 1, width=width)
    return [dict(it) for it in items] + new


# --- rebuilding --------------------------------------------------------------------------------


def read_items(path: Path) -> list[dict[str, str]]:
    """Read ``items.csv`` and check its columns."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != ITEM_COLUMNS:
            raise RealCorpusError(f"{path}: columns {reader.fieldnames}, expected {ITEM_COLUMNS}")
        return list(reader)


def write_items(items: Sequence[Mapping[str, str]], path: Path) -> None:
    """Write ``items.csv`` (keys only: no text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ITEM_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(items)


def context_with_target(sentences: Sequence[str], index: int) -> str:
    """The record's sentences joined by spaces, the target wrapped in ``[[ ]]``.

    Records longer than ``CONTEXT_MAX_SENTENCES`` sentences are shown as a window of
    ``CONTEXT_WINDOW`` sentences either side of the target, with ``[…]`` for what is left out.

    Examples
    --------
    >>> context_with_target(["Me too.", "At least you tried.", "Hugs."], 1)
    'Me too. [[At least you tried.]] Hugs.'
    """
    lo, hi = 0, len(sentences)
    if hi > CONTEXT_MAX_SENTENCES:
        lo, hi = max(0, index - CONTEXT_WINDOW), min(hi, index + CONTEXT_WINDOW + 1)
    shown = [f"[[{s}]]" if i == index else s for i, s in enumerate(sentences[lo:hi], start=lo)]
    return " ".join(["[…]"] * (lo > 0) + shown + ["[…]"] * (hi < len(sentences)))


def trimmed_context(sentences: Sequence[str], index: int, max_chars: int = 600) -> str:
    """The target wrapped in ``⟦ ⟧`` with whole neighbouring sentences up to ``max_chars``.

    Sentences are added alternately after and before the target while the context stays within
    ``max_chars`` characters (the target itself always shows, however long); ``[…]`` marks
    what is left out at either end.

    Examples
    --------
    >>> trimmed_context(["Me too.", "At least you tried.", "Hugs."], 1)
    'Me too. ⟦At least you tried.⟧ Hugs.'
    >>> trimmed_context(["A" * 30, "Short one.", "B" * 30], 1, max_chars=30)
    '[…] ⟦Short one.⟧ […]'
    """
    lo, hi = index, index + 1
    length = len(sentences[index]) + 2
    grew = True
    while grew:
        grew = False
        for side in ("after", "before"):
            j = hi if side == "after" else lo - 1
            if 0 <= j < len(sentences) and length + 1 + len(sentences[j]) <= max_chars:
                length += 1 + len(sentences[j])
                lo, hi = (lo, hi + 1) if side == "after" else (lo - 1, hi)
                grew = True
    shown = [f"⟦{s}⟧" if i == index else s for i, s in enumerate(sentences[lo:hi], start=lo)]
    return " ".join(["[…]"] * (lo > 0) + shown + ["[…]"] * (hi < len(sentences)))


def rebuild(
    items: Sequence[Mapping[str, str]],
    specs: Sequence[SourceSpec],
    snapshots: Mapping[str, Snapshot],
    context: Callable[[Sequence[str], int], str] = context_with_target,
) -> list[dict[str, str]]:
    """Rebuild every item's sentence and context, verifying both hashes.

    ``context`` makes an item's context from its record's sentences and its index
    (``context_with_target`` by default; the blind file can use ``trimmed_context``).

    Raises
    ------
    RealCorpusError
        Listing every item whose record is missing or whose record or sentence hash differs
        (a changed source, cleaning rule or sentence splitter), or a snapshot problem.
    """
    by_id = {s.id: s for s in specs}
    unknown = sorted({it["source"] for it in items} - set(by_id))
    if unknown:
        raise RealCorpusError(f"items name unknown sources {unknown}")
    errors: list[str] = []
    out: list[dict[str, str]] = []
    for spec in specs:
        mine = [it for it in items if it["source"] == spec.id]
        if not mine:
            continue
        records = read_records(spec, snapshots[spec.id])
        split_cache: dict[tuple[str, str], list[str]] = {}
        for it in mine:
            key = (it["path"], it["record_id"])
            where = f"item {it['item_id']} ({spec.id} {it['path']} record {it['record_id']})"
            text = records.get(key)
            if text is None:
                errors.append(f"{where}: record not found among the eligible records")
                continue
            if sha256_text(text) != it["record_sha256"]:
                errors.append(f"{where}: record text changed (SHA-256 differs)")
                continue
            sentences = split_cache.setdefault(key, split_sentences(text))
            index = int(it["sentence_index"])
            if not 0 <= index < len(sentences):
                errors.append(
                    f"{where}: sentence {index} out of range ({len(sentences)} sentences): "
                    "has the sentence splitter changed?"
                )
                continue
            if sha256_text(sentences[index]) != it["sentence_sha256"]:
                errors.append(
                    f"{where}: sentence {index} changed (SHA-256 differs): has the sentence "
                    "splitter or a cleaning rule changed?"
                )
                continue
            out.append(
                {
                    "item_id": it["item_id"],
                    "batch": it["batch"],
                    "source": spec.id,
                    "arm": it["arm"],
                    "path": it["path"],
                    "record_id": it["record_id"],
                    "sentence_index": it["sentence_index"],
                    "sentence": sentences[index],
                    # a tab inside a neighbouring sentence would split the TSV row for readers
                    # that take fields unquoted (``devcorpus``); the context is not hashed
                    "context": context(sentences, index).replace("\t", " "),
                }
            )
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise RealCorpusError(f"{len(errors)} of {len(items)} items failed:\n  {shown}{more}")
    return sorted(out, key=lambda row: row["item_id"])


def write_tsv(rows: Sequence[Mapping[str, str]], columns: Sequence[str], path: Path) -> None:
    """Tab-separated, quoted only where a field needs it (read back with csv or pandas)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in rows)


def blind_rows(rows: Sequence[Mapping[str, str]], seed: int, batch: int) -> list[dict[str, str]]:
    """A batch's rows for blind annotation: ``BLIND_COLUMNS`` only, shuffled with a fixed seed."""
    blind = [{c: row[c] for c in BLIND_COLUMNS} for row in rows if row["batch"] == str(batch)]
    blind.sort(key=lambda row: row["item_id"])
    random.Random(_rng_key(seed, batch, "blind")).shuffle(blind)
    return blind


def _refuse_inside_repository(path: Path, what: str) -> None:
    inside = path.resolve().is_relative_to(ROOT)
    if inside and not path.resolve().is_relative_to(ROOT / "benchmarks/out"):
        raise RealCorpusError(
            f"{path}: inside the repository; the {what} file must not be committed: write it "
            "outside the repository or under benchmarks/out/"
        )


def write_blind(rows: Sequence[Mapping[str, str]], path: Path, parts: int) -> list[Path]:
    """Write the blind file and, for ``parts`` > 1, its consecutive slices ``<stem>_partK``."""
    _refuse_inside_repository(path, "blind (it holds source text)")
    written = [path]
    write_tsv(rows, BLIND_COLUMNS, path)
    if parts > 1:
        size = -(-len(rows) // parts)  # ceiling: the last part is the short one
        for k in range(parts):
            part = path.with_name(f"{path.stem}_part{k + 1}{path.suffix}")
            write_tsv(rows[k * size : (k + 1) * size], BLIND_COLUMNS, part)
            written.append(part)
    return written


def arm_counts(
    items: Iterable[Mapping[str, str]], batch: int | None = None
) -> dict[str, dict[str, int]]:
    """source -> {"random": n, "targeted": n, "targeted:<pattern>": n, "scored": n, ...}.

    Counts one batch's items, or all items when ``batch`` is None.
    """
    counts: dict[str, dict[str, int]] = {}
    for it in items:
        if batch is not None and it["batch"] != str(batch):
            continue
        per = counts.setdefault(it["source"], {})
        arm = it["arm"]
        per[arm] = per.get(arm, 0) + 1
        for kind in ("targeted", "scored"):
            if arm.startswith(f"{kind}:"):
                per[kind] = per.get(kind, 0) + 1
    return counts


# --- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("build", "rebuild texts from snapshots and verify every hash"),
        ("blind", "rebuild one batch and write its shuffled blind annotation file"),
        ("sample", "draw the items anew and rewrite items.csv (maintainers)"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--snapshot",
            action="append",
            default=[],
            metavar="SOURCE_ID=GIT_DIR",
            help="local git directory of a source's repository (repeat per source)",
        )
        cmd.add_argument(
            "--mirror-root",
            type=Path,
            help="directory holding snapshots as <owner>+<name>/repo",
        )
        cmd.add_argument("--data", type=Path, default=DATA_DIR, help="corpus key directory")
    sub.choices["sample"].add_argument(
        "--append",
        type=int,
        metavar="BATCH",
        help="keep items.csv's earlier batches as they are and draw only this new batch "
        "(needs snapshots of its sources only)",
    )
    build = sub.choices["build"]
    build.add_argument("--out", type=Path, default=DEFAULT_OUT)
    build.add_argument("--batch", type=int, help="only this batch's items (default: all)")
    blind = sub.choices["blind"]
    blind.add_argument("--batch", type=int, required=True)
    blind.add_argument("--out", type=Path, required=True, help="the blind .tsv file to write")
    blind.add_argument("--parts", type=int, default=1, help="also split it into this many parts")
    blind.add_argument(
        "--context-chars",
        type=int,
        help="context as whole sentences within this many characters, target in ⟦ ⟧ "
        "(default: the record's sentences as in build, target in [[ ]])",
    )
    blind.add_argument(
        "--key", type=Path, help="also write item_id -> source, arm for the batch (integrator only)"
    )
    return parser


def _run(args: argparse.Namespace) -> list[dict[str, str]]:
    seed, specs = load_sources(args.data / "sources.json")
    if args.command == "sample":
        patterns = load_patterns(args.data / "patterns.json")
        batches = load_batches(args.data / "sources.json")
        if args.append is not None:
            needed = {s.id for s in specs if args.append in s.samples}
            snapshots = snapshots_from_args(specs, args.snapshot, args.mirror_root, needed)
            old = read_items(args.data / "items.csv")
            items = append_batch(old, specs, snapshots, patterns, seed, batches, args.append)
        else:
            snapshots = snapshots_from_args(specs, args.snapshot, args.mirror_root)
            items = sample_items(specs, snapshots, patterns, seed, batches)
        write_items(items, args.data / "items.csv")
        print(f"wrote {len(items)} items to {args.data / 'items.csv'}")
        return items
    items = read_items(args.data / "items.csv")
    if args.batch is not None:
        items = [it for it in items if it["batch"] == str(args.batch)]
        if not items:
            raise RealCorpusError(f"{args.data / 'items.csv'}: no items in batch {args.batch}")
    needed = {it["source"] for it in items} & {s.id for s in specs}
    snapshots = snapshots_from_args(specs, args.snapshot, args.mirror_root, needed)
    chars = getattr(args, "context_chars", None)
    if chars is not None and chars < 1:
        raise RealCorpusError(f"--context-chars {chars}: must be a positive number of characters")
    context = context_with_target if chars is None else partial(trimmed_context, max_chars=chars)
    rows = rebuild(items, specs, snapshots, context)
    if args.command == "blind":
        written = write_blind(blind_rows(rows, seed, args.batch), args.out, args.parts)
        if args.key is not None:
            _refuse_inside_repository(args.key, "key")
            write_tsv(rows, KEY_COLUMNS, args.key)
            written.append(args.key)
        print(f"verified {len(rows)} items; wrote " + ", ".join(map(str, written)))
        return items
    write_tsv(rows, ("item_id", "batch", *REBUILT_COLUMNS), args.out / "real_corpus.tsv")
    write_tsv(rows, ("item_id", "context", "sentence"), args.out / "to_annotate.tsv")
    print(f"verified {len(rows)} items; wrote {args.out}/real_corpus.tsv and to_annotate.tsv")
    return items


#: Columns of ``real_corpus.tsv`` after ``item_id`` and ``batch``.
REBUILT_COLUMNS = ("source", "arm", "path", "record_id", "sentence_index", "sentence", "context")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        items = _run(args)
    except RealCorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for batch in sorted({int(it["batch"]) for it in items}):
        for source, per in arm_counts(items, batch).items():
            scored = f", scored {per['scored']}" if "scored" in per else ""
            print(
                f"  batch {batch} {source}: random {per.get('random', 0)}, "
                f"targeted {per.get('targeted', 0)}{scored}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
