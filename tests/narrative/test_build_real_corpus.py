"""tools/build_real_corpus.py: rebuilding the real-supporter corpus from keys and snapshots.

The real snapshots are not needed: a small git repository made in the test stands in for a
source, so hash verification and the commit check are tested on every run.  The committed keys
(``benchmarks/story_data/real/items.csv``) are checked for shape and consistency here too.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .._scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools/build_real_corpus.py"
REAL = ROOT / "benchmarks/story_data/real"


def _tool() -> ModuleType:
    return load_script(TOOL)


brc = _tool()

REPLIES = [
    {
        "id": "r1",
        "who": "supporter",
        "text": "Me too. I had the same thing last year! Hang in there.",
    },
    {"id": "r2", "who": "seeker", "text": "I feel like nobody gets it. SEEKER WORDS."},
    {"id": "r3", "who": "supporter", "text": "At least you still have your job. That counts."},
    {
        "id": "r4",
        "who": "supporter",
        "text": "What helped me was writing. Maybe try it? Good luck.",
    },
    {"id": "r5", "who": "supporter", "text": "At least text me when you get home.\nTake care x"},
    # a second kind of supporter (a second source in batch 2's tests) repeating some sentences
    {"id": "r6", "who": "peer", "text": "Me too. At least you still have your job. You got this."},
]


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _commit_csv(repo: Path, rows: list[dict[str, str]], message: str) -> tuple[str, str]:
    with (repo / "replies.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "who", "text"])
        writer.writeheader()
        writer.writerows(rows)
    _git(repo, "add", "replies.csv")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD"), _git(repo, "rev-parse", "HEAD:replies.csv")


def _write_specs(data: Path, commit: str, blob: str, *, batch2: bool = False) -> None:
    """Keys for one source in batch 1; with ``batch2`` a second batch and a second source."""

    def source(id_: str, who: str, samples: dict[str, dict[str, int]]) -> dict[str, Any]:
        return {
            "id": id_,
            "repo": "example/replies",
            "commit": commit,
            "files": {"replies.csv": blob},
            "format": "csv",
            "record_id": ["id"],
            "text": "text",
            "clean": "plain",
            "keep": {"who": [who]},
            "drop": {},
            "samples": samples,
        }

    first = {"1": {"n_random": 3, "n_targeted": 2}}
    sources = [source("fixture", "supporter", first)]
    batches: dict[str, dict[str, str]] = {"1": {"distinct": "source"}}
    if batch2:
        batches["2"] = {"distinct": "batch"}
        sources = [
            source("fixture", "supporter", {**first, "2": {"n_random": 1, "n_targeted": 9}}),
            source("fixture_peer", "peer", {"2": {"n_random": 1, "n_targeted": 9}}),
        ]
    specs = {"seed": 7, "batches": batches, "sources": sources}
    (data / "sources.json").write_text(json.dumps(specs))
    patterns = {
        "patterns": {
            "at_least": {"regex": r"\bat least\b", "kind": "downward", "batches": [1]},
            "me_too": {"regex": r"\bme too\b", "kind": "connection", "batches": [1]},
            "down_at_least_you": {"regex": r"\bat least you\b", "kind": "downward", "batches": [2]},
            "look_me_too": {"regex": r"\bme too\b", "kind": "look-alike", "batches": [2]},
        }
    }
    (data / "patterns.json").write_text(json.dumps(patterns))


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path, str]:
    """A source repository, its keys (sampled from it) and the pinned commit."""
    repo = tmp_path / "replies"
    repo.mkdir()
    _git(repo, "init", "-q")
    commit, blob = _commit_csv(repo, REPLIES, "replies")
    data = tmp_path / "keys"
    data.mkdir()
    _write_specs(data, commit, blob)
    assert brc.main(["sample", "--snapshot", f"fixture={repo}", "--data", str(data)]) == 0
    return repo, data, commit


def _sample(repo: Path, data: Path, *sources: str) -> int:
    argv = ["sample", "--data", str(data)]
    for source in sources or ("fixture",):
        argv += ["--snapshot", f"{source}={repo}"]
    return int(brc.main(argv))


def _load(data: Path) -> tuple[list[Any], list[dict[str, str]]]:
    _, specs = brc.load_sources(data / "sources.json")
    return specs, brc.read_items(data / "items.csv")


def test_rebuild_verifies_and_marks_the_target(corpus: tuple[Path, Path, str]) -> None:
    repo, data, _ = corpus
    specs, items = _load(data)
    rows = brc.rebuild(items, specs, {"fixture": brc.Snapshot(repo)})
    assert len(rows) == len(items) == 5
    arms = sorted(r["arm"] for r in rows)
    assert arms.count("random") == 3
    assert all(a == "random" or a in {"targeted:at_least", "targeted:me_too"} for a in arms)
    for row in rows:
        assert f"[[{row['sentence']}]]" in row["context"]
        assert "SEEKER" not in row["context"]  # the help-seeker's row is not a supporter's
    by_id = {it["item_id"]: it for it in items}
    for row in rows:
        assert brc.sha256_text(row["sentence"]) == by_id[row["item_id"]]["sentence_sha256"]


def test_changed_sentence_fails_hash_verification(
    corpus: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, data, _ = corpus
    specs, items = _load(data)
    real_split = brc.split_sentences
    # a splitter that changes one sentence, as a changed splitter or cleaning rule would
    monkeypatch.setattr(
        brc,
        "split_sentences",
        lambda text: [s.upper() for s in real_split(text)],
    )
    with pytest.raises(brc.RealCorpusError, match=r"sentence \d+ changed \(SHA-256 differs\)"):
        brc.rebuild(items, specs, {"fixture": brc.Snapshot(repo)})


def test_changed_key_hash_is_reported_with_the_item(corpus: tuple[Path, Path, str]) -> None:
    repo, data, _ = corpus
    specs, items = _load(data)
    items[0]["sentence_sha256"] = "0" * 64
    expected = rf"1 of 5 items failed:\n  item {items[0]['item_id']} "
    with pytest.raises(brc.RealCorpusError, match=expected):
        brc.rebuild(items, specs, {"fixture": brc.Snapshot(repo)})


def test_changed_record_at_a_new_commit_fails(corpus: tuple[Path, Path, str]) -> None:
    repo, data, _ = corpus
    edited = [dict(r, text=r["text"] + " Edited.") for r in REPLIES]
    commit, blob = _commit_csv(repo, edited, "edit a reply")
    _write_specs(data, commit, blob)  # the keys re-pinned to the new commit, items unchanged
    specs, items = _load(data)
    with pytest.raises(brc.RealCorpusError, match="record text changed"):
        brc.rebuild(items, specs, {"fixture": brc.Snapshot(repo)})


def test_snapshot_without_the_pinned_commit_is_refused(
    corpus: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, data, commit = corpus
    other = tmp_path / "other"
    other.mkdir()
    _git(other, "init", "-q")
    head, _ = _commit_csv(other, REPLIES, "same file, different history")
    assert head != commit
    specs, items = _load(data)
    with pytest.raises(brc.RealCorpusError, match=f"is at {head} and does not contain the pinned"):
        brc.rebuild(items, specs, {"fixture": brc.Snapshot(other)})
    # the command line reports it and exits 2
    out = tmp_path / "out"
    argv = ["build", "--snapshot", f"fixture={other}", "--data", str(data), "--out", str(out)]
    assert brc.main(argv) == 2
    assert not (out / "to_annotate.tsv").exists()


def test_pinned_file_must_have_the_pinned_blob(corpus: tuple[Path, Path, str]) -> None:
    repo, data, commit = corpus
    _write_specs(data, commit, "f" * 40)
    specs, items = _load(data)
    with pytest.raises(brc.RealCorpusError, match=r"the corpus pins f{40}"):
        brc.rebuild(items, specs, {"fixture": brc.Snapshot(repo)})


def test_not_a_git_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(brc.RealCorpusError, match="not a git directory"):
        brc.Snapshot(tmp_path)


def test_build_writes_a_blind_annotation_batch(
    corpus: tuple[Path, Path, str], tmp_path: Path
) -> None:
    repo, data, _ = corpus
    out = tmp_path / "out"
    argv = ["build", "--snapshot", f"fixture={repo}", "--data", str(data), "--out", str(out)]
    assert brc.main(argv) == 0
    with (out / "to_annotate.tsv").open(encoding="utf-8", newline="") as handle:
        batch = list(csv.DictReader(handle, delimiter="\t"))
    assert list(batch[0]) == ["item_id", "context", "sentence"]
    assert all(it["batch"] == "1" for it in brc.read_items(data / "items.csv"))
    assert [r["item_id"] for r in batch] == sorted(r["item_id"] for r in batch)
    with (out / "real_corpus.tsv").open(encoding="utf-8", newline="") as handle:
        full = {r["item_id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    for row in batch:
        assert row["sentence"] == full[row["item_id"]]["sentence"]


def test_sampling_is_deterministic(corpus: tuple[Path, Path, str]) -> None:
    repo, data, _ = corpus
    first = (data / "items.csv").read_bytes()
    assert brc.main(["sample", "--snapshot", f"fixture={repo}", "--data", str(data)]) == 0
    assert (data / "items.csv").read_bytes() == first


# --- batches ------------------------------------------------------------------------------------


@pytest.fixture
def two_batches(corpus: tuple[Path, Path, str]) -> tuple[Path, Path, list[dict[str, str]]]:
    """The corpus fixture with batch 2 (and a second source) added and re-sampled."""
    repo, data, commit = corpus
    first = brc.read_items(data / "items.csv")
    blob = json.loads((data / "sources.json").read_text())["sources"][0]["files"]["replies.csv"]
    _write_specs(data, commit, blob, batch2=True)
    assert _sample(repo, data, "fixture", "fixture_peer") == 0
    return repo, data, first


def test_drawing_batch_2_leaves_batch_1_as_it_was(
    two_batches: tuple[Path, Path, list[dict[str, str]]],
) -> None:
    _, data, first = two_batches
    items = brc.read_items(data / "items.csv")
    assert [it for it in items if it["batch"] == "1"] == first
    second = [it for it in items if it["batch"] == "2"]
    assert second, "batch 2 drew nothing"
    # item ids continue after batch 1's
    assert min(it["item_id"] for it in second) > max(it["item_id"] for it in first)
    assert {it["arm"] for it in second} <= {
        "random",
        "targeted:down_at_least_you",
        "targeted:look_me_too",
    }


def test_batch_2_never_repeats_a_sentence(
    two_batches: tuple[Path, Path, list[dict[str, str]]],
) -> None:
    _, data, first = two_batches
    items = brc.read_items(data / "items.csv")
    second = [it["sentence_sha256"] for it in items if it["batch"] == "2"]
    assert not set(second) & {it["sentence_sha256"] for it in first}
    assert len(set(second)) == len(second)  # across sources too ("Me too." is in both)
    # every supporter sentence not drawn by batch 1 was eligible, and the peer's repeats were not
    assert len(first) + len(second) == len({*second, *(it["sentence_sha256"] for it in first)})


def test_blind_file_is_shuffled_split_and_tells_nothing(
    two_batches: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    repo, data, _ = two_batches
    out = tmp_path / "annot" / "batch2.tsv"
    argv = ["blind", "--data", str(data), "--batch", "2", "--out", str(out), "--parts", "2"]
    argv += ["--snapshot", f"fixture={repo}", "--snapshot", f"fixture_peer={repo}"]
    assert brc.main(argv) == 0

    def read(path: Path) -> list[dict[str, str]]:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))

    whole = read(out)
    parts = [read(out.with_name(f"batch2_part{k}.tsv")) for k in (1, 2)]
    assert list(whole[0]) == ["item_id", "sentence", "context"]
    second = {it["item_id"]: it for it in brc.read_items(data / "items.csv") if it["batch"] == "2"}
    assert sorted(r["item_id"] for r in whole) == sorted(second)
    assert parts[0] + parts[1] == whole
    assert abs(len(parts[0]) - len(parts[1])) <= 1
    for row in whole:
        assert brc.sha256_text(row["sentence"]) == second[row["item_id"]]["sentence_sha256"]
        assert f"[[{row['sentence']}]]" in row["context"]
    # the same seed gives the same order
    assert brc.main(argv) == 0
    assert read(out) == whole


def test_blind_file_is_refused_inside_the_repository() -> None:
    rows = [{"item_id": "item1", "batch": "2", "sentence": "s", "context": "[[s]]"}]
    with pytest.raises(brc.RealCorpusError, match="must not be committed"):
        brc.write_blind(rows, brc.DATA_DIR / "batch2.tsv", 1)


def test_blind_file_with_trimmed_context_and_key(
    two_batches: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    repo, data, _ = two_batches
    out, key = tmp_path / "b2.tsv", tmp_path / "b2_key.tsv"
    argv = ["blind", "--data", str(data), "--batch", "2", "--out", str(out)]
    argv += ["--context-chars", "40", "--key", str(key)]
    argv += ["--snapshot", f"fixture={repo}", "--snapshot", f"fixture_peer={repo}"]
    assert brc.main(argv) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        blind = list(csv.DictReader(handle, delimiter="\t"))
    with key.open(encoding="utf-8", newline="") as handle:
        keys = {row["item_id"]: row for row in csv.DictReader(handle, delimiter="\t")}
    second = {it["item_id"]: it for it in brc.read_items(data / "items.csv") if it["batch"] == "2"}
    assert list(blind[0]) == ["item_id", "sentence", "context"]
    assert set(keys) == set(second) == {row["item_id"] for row in blind}
    for item_id, row in keys.items():
        assert (row["source"], row["arm"]) == (second[item_id]["source"], second[item_id]["arm"])
    for row in blind:
        assert f"⟦{row['sentence']}⟧" in row["context"]
        shown = row["context"].replace("[…]", "").strip()
        assert len(shown) <= max(40, len(row["sentence"]) + 2)
    # the key is refused inside the repository, like the blind file
    argv[argv.index(str(key))] = str(brc.DATA_DIR / "key.tsv")
    assert brc.main(argv) == 2
    assert not (brc.DATA_DIR / "key.tsv").exists()


def test_appending_a_batch_draws_what_a_full_resample_draws(
    corpus: tuple[Path, Path, str],
) -> None:
    repo, data, commit = corpus
    blob = json.loads((data / "sources.json").read_text())["sources"][0]["files"]["replies.csv"]
    _write_specs(data, commit, blob, batch2=True)
    before = (data / "items.csv").read_text()
    argv = ["sample", "--data", str(data), "--append", "2"]
    argv += ["--snapshot", f"fixture={repo}", "--snapshot", f"fixture_peer={repo}"]
    assert brc.main(argv) == 0
    appended = (data / "items.csv").read_text()
    assert appended.startswith(before)  # batch 1's rows untouched
    assert any(it["batch"] == "2" for it in brc.read_items(data / "items.csv"))
    assert _sample(repo, data, "fixture", "fixture_peer") == 0
    assert (data / "items.csv").read_text() == appended
    # a batch already there, or one that skips a batch, is refused (exit status 2)
    assert brc.main(argv) == 2
    assert brc.main([*argv[:4], "3", *argv[5:]]) == 2
    assert (data / "items.csv").read_text() == appended


def test_rebuilding_an_early_batch_needs_only_its_sources_snapshots(
    two_batches: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    repo, data, _ = two_batches
    base = ["build", "--data", str(data), "--out", str(tmp_path / "out"), "--batch"]
    # fixture_peer draws only in batch 2: batch 1 rebuilds without its snapshot, batch 2 not
    assert brc.main([*base, "1", "--snapshot", f"fixture={repo}"]) == 0
    assert brc.main([*base, "2", "--snapshot", f"fixture={repo}"]) == 2


def test_trimmed_context_keeps_whole_sentences_around_the_target() -> None:
    sentences = [f"Sentence number {i}." for i in range(20)]
    context = brc.trimmed_context(sentences, 10, max_chars=100)
    assert "⟦Sentence number 10.⟧" in context
    assert context.startswith("[…] ") and context.endswith(" […]")
    inner = context.removeprefix("[…] ").removesuffix(" […]").split(" ")
    assert len(" ".join(inner)) <= 100
    # neighbours are taken from both sides, nearest first
    assert "Sentence number 9." in context and "Sentence number 11." in context
    assert "Sentence number 0." not in context
    assert brc.trimmed_context(["Only one."], 0) == "⟦Only one.⟧"
    # a target longer than the limit is still shown, alone
    assert brc.trimmed_context(["x" * 50, "Next."], 0, max_chars=10) == f"⟦{'x' * 50}⟧ […]"


def test_grouped_rows_and_row_numbers_make_records(tmp_path: Path) -> None:
    repo = tmp_path / "rows"
    repo.mkdir()
    _git(repo, "init", "-q")
    rows = [
        ("3", "p1", "ann", "Hang in there."),
        ("1", "p1", "ann", "I<U+0092>ve been there."),
        ("2", "p1", "bob", "At least you tried."),
        ("9", "p2", "ann", "Same thing on another post."),
    ]
    (repo / "s.csv").write_text(
        "\ufeffsid,post,author,text\n" + "".join(",".join(r) + "\n" for r in rows),
        encoding="utf-8",
    )
    _git(repo, "add", "s.csv")
    _git(repo, "commit", "-q", "-m", "rows")
    commit, blob = _git(repo, "rev-parse", "HEAD"), _git(repo, "rev-parse", "HEAD:s.csv")
    base = {
        "id": "grouped",
        "repo": "example/rows",
        "commit": commit,
        "files": {"s.csv": blob},
        "format": "csv",
        "record_id": ["post", "author"],
        "text": "text",
        "clean": "escaped",
        "samples": {},
        "group_by": ["post", "author"],
        "order_by": "sid",
    }
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"seed": 1, "batches": {}, "sources": [base]}))
    spec = brc.load_sources(path)[1][0]
    records = brc.read_records(spec, brc.Snapshot(repo))
    # the byte-order mark is not part of "sid"; rows are ordered by it; R's escapes are undone
    assert records == {
        ("s.csv", "p1:ann"): "I\u2019ve been there.\nHang in there.",
        ("s.csv", "p1:bob"): "At least you tried.",
        ("s.csv", "p2:ann"): "Same thing on another post.",
    }
    assert brc.split_sentences(records[("s.csv", "p1:ann")]) == [
        "I\u2019ve been there.",
        "Hang in there.",
    ]
    # without grouping, the data row number can complete a key that repeats
    plain = {**base, "group_by": [], "order_by": None, "record_id": ["post", "#row"]}
    path.write_text(json.dumps({"seed": 1, "batches": {}, "sources": [plain]}))
    spec = brc.load_sources(path)[1][0]
    assert list(brc.read_records(spec, brc.Snapshot(repo))) == [
        ("s.csv", "p1:1"),
        ("s.csv", "p1:2"),
        ("s.csv", "p1:3"),
        ("s.csv", "p2:4"),
    ]
    # group_by without order_by is refused
    path.write_text(json.dumps({"seed": 1, "batches": {}, "sources": [{**base, "order_by": None}]}))
    with pytest.raises(brc.RealCorpusError, match="group_by and order_by go together"):
        brc.load_sources(path)


def test_paragraph_formats_make_records(tmp_path: Path) -> None:
    repo = tmp_path / "books"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "book.md").write_text(
        "# Title\n\n## Front\n\nSkip me.\n\n## Chapter 1\n\nWe were *just* like\nyou, "
        'and \\"we\\" got\nwell.\n\n> Quoted line.\n> Second.\n',
        encoding="utf-8",
    )
    (repo / "ch.js").write_text(
        'export const c = {"body": `<h4>7 Tips</h4>\n<p>Many of us\n<em>tried</em>&nbsp;it.</p>'
        "\n<p></p>\n<p>At least, try.</p>`};\n",
        encoding="utf-8",
    )
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "books")
    commit = _git(repo, "rev-parse", "HEAD")
    blobs = {name: _git(repo, "rev-parse", f"HEAD:{name}") for name in ("book.md", "ch.js")}

    def spec(name: str, fmt: str, clean: str, **extra: Any) -> Any:
        raw = {
            "id": fmt,
            "repo": "example/books",
            "commit": commit,
            "files": {name: blobs[name]},
            "format": fmt,
            "record_id": ["section", "paragraph"],
            "text": "text",
            "clean": clean,
            "samples": {},
            **extra,
        }
        path = tmp_path / f"{fmt}.json"
        path.write_text(json.dumps({"seed": 1, "batches": {}, "sources": [raw]}))
        return brc.load_sources(path)[1][0]

    book = spec("book.md", "markdown", "markdown", drop_match={"section": "(?i)front"})
    # hard-wrapped lines make one paragraph; escapes, emphasis and quote markers are not text;
    # the front matter is dropped by its section
    assert brc.read_records(book, brc.Snapshot(repo)) == {
        ("book.md", "Chapter 1:2"): 'We were just like you, and "we" got well.',
        ("book.md", "Chapter 1:3"): "Quoted line. Second.",
    }
    chapter = spec("ch.js", "html_paragraphs", "html")
    # one record per <p>, the nearest heading names the section, an empty paragraph is no record
    assert brc.read_records(chapter, brc.Snapshot(repo)) == {
        ("ch.js", "7 Tips:1"): "Many of us tried it.",
        ("ch.js", "7 Tips:3"): "At least, try.",
    }


def test_batches_must_be_numbered_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"seed": 1, "batches": {"2": {"distinct": "batch"}}, "sources": []}))
    with pytest.raises(brc.RealCorpusError, match="numbered 1, 2"):
        brc.load_batches(path)
    path.write_text(json.dumps({"seed": 1, "batches": {"1": {"distinct": "all"}}, "sources": []}))
    with pytest.raises(brc.RealCorpusError, match="distinct 'all'"):
        brc.load_batches(path)


def test_context_window_for_long_records() -> None:
    sentences = [f"S{i}." for i in range(30)]
    context = brc.context_with_target(sentences, 10)
    assert context == "[…] S5. S6. S7. S8. S9. [[S10.]] S11. S12. S13. S14. S15. […]"
    assert brc.context_with_target(sentences[:3], 0) == "[[S0.]] S1. S2."


def test_cleaners_keep_only_the_supporters_own_text() -> None:
    reddit = "&gt; i feel so alone\n\nYou are not alone &amp; it gets easier.&#x200B;"
    assert brc._clean_reddit(reddit) == "You are not alone & it gets easier."
    answer = (
        "<p><!--[if gte mso 9]><xml><o:x>junk</o:x></xml><![endif]-->Hi.\r\nIt is\r\ncommon."
        '</p><ul><li>Breathe.</li></ul><img src="data:image/png;base64,AAAA">'
        "<p>Best&nbsp;wishes</p>"
    )
    assert brc._clean_html(answer) == "Hi. It is common.\nBreathe.\nBest wishes"


# --- the committed keys ---------------------------------------------------------------------------


def test_committed_keys_are_consistent() -> None:
    seed, specs = brc.load_sources(REAL / "sources.json")
    batches = brc.load_batches(REAL / "sources.json")
    patterns = brc.load_patterns(REAL / "patterns.json")
    items = brc.read_items(REAL / "items.csv")
    assert isinstance(seed, int)
    assert len(items) >= 3000
    assert len({it["item_id"] for it in items}) == len(items)
    by_id = {s.id: s for s in specs}
    selected = {
        b.batch: {(src, digest): f"scored:{arm}" for src, digest, arm in b.selection}
        for b in batches
    }
    for it in items:
        batch = int(it["batch"])
        arms = {"random", *(f"targeted:{n}" for n in brc.patterns_for(patterns, batch))}
        arms |= set(selected[batch].values())
        assert it["source"] in by_id
        assert batch in by_id[it["source"]].samples
        assert it["arm"] in arms
        assert it["path"] in by_id[it["source"]].files
        assert re.fullmatch(r"[0-9a-f]{64}", it["sentence_sha256"])
        assert re.fullmatch(r"[0-9a-f]{64}", it["record_sha256"])
    drawn_before: set[str] = set()
    for batch in batches:
        mine = [it for it in items if it["batch"] == str(batch.batch)]
        counts = brc.arm_counts(mine)
        # every source with a quota for the batch drew in it (batch 10 has a single source)
        assert set(counts) == {s.id for s in specs if batch.batch in s.samples}
        for source, per in counts.items():
            quota = by_id[source].samples[batch.batch]
            assert per.get("random", 0) == quota.n_random
            assert per.get("targeted", 0) <= quota.n_targeted
            assert per.get("scored", 0) == quota.n_scored
        # a scored arm is exactly its selection file
        scored = {
            (it["source"], it["sentence_sha256"]): it["arm"]
            for it in mine
            if it["arm"].startswith("scored:")
        }
        assert scored == selected[batch.batch]
        # a sentence is drawn once per source (batch 1) or once per batch (later batches) ...
        scope = (lambda it: it["source"]) if batch.distinct == "source" else (lambda it: "")
        keys = {(scope(it), it["sentence_sha256"]) for it in mine}
        assert len(keys) == len(mine)
        # ... and never again in a later batch
        hashes = {it["sentence_sha256"] for it in mine}
        assert not hashes & drawn_before
        drawn_before |= hashes
    # item ids run on from batch to batch
    order = [int(it["batch"]) for it in sorted(items, key=lambda it: it["item_id"])]
    assert order == sorted(order)


def test_every_pattern_is_used_and_compiles() -> None:
    patterns = brc.load_patterns(REAL / "patterns.json")
    batches = {b.batch for b in brc.load_batches(REAL / "sources.json")}
    kinds = {"upward", "downward", "connection", "look-alike", "mixed"}
    for pattern in patterns.values():
        assert pattern.batches and pattern.batches <= batches, pattern.name
        assert pattern.kind in kinds, pattern.name
    # batch 2 aims at comparisons: most of its patterns do, and it has look-alikes for contrast
    second = [p.kind for p in patterns.values() if 2 in p.batches]
    assert second.count("upward") >= 10 and second.count("downward") >= 10
    assert second.count("look-alike") >= 4
    # batch 3 too, aimed at the sources other than reddit_genz6
    third = [p.kind for p in patterns.values() if 3 in p.batches]
    assert third.count("upward") >= 8 and third.count("downward") >= 8
    assert third.count("look-alike") >= 4
    # batch 5 too, aimed at recovery communities' posts, with look-alikes for contrast
    fifth = [p.kind for p in patterns.values() if 5 in p.batches]
    assert fifth.count("upward") >= 8 and fifth.count("downward") >= 8
    assert fifth.count("look-alike") >= 3
    # batch 6 (the held-out batch after batches 4-5 joined training) aims at downward forms too
    sixth = [p.kind for p in patterns.values() if 6 in p.batches]
    assert sixth.count("upward") >= 5 and sixth.count("downward") >= 5
    assert sixth.count("look-alike") >= 3
    # batch 7 (a training batch from five new communities) aims at both comparisons again
    seventh = [p.kind for p in patterns.values() if 7 in p.batches]
    assert seventh.count("upward") >= 5 and seventh.count("downward") >= 5
    assert seventh.count("look-alike") >= 3 and "connection" in seventh
    # batch 8 (a training batch of replies) aims at both comparisons again
    eighth = [p.kind for p in patterns.values() if 8 in p.batches]
    assert eighth.count("upward") >= 5 and eighth.count("downward") >= 5
    assert eighth.count("look-alike") >= 2 and "connection" in eighth
    # batch 9 (a training batch of replies) aims above all at upward comparison, the scarcest
    ninth = [p.kind for p in patterns.values() if 9 in p.batches]
    assert ninth.count("upward") >= 8 and ninth.count("upward") > ninth.count("downward") >= 5
    assert ninth.count("look-alike") >= 2 and "connection" in ninth
    # batch 10 (the new held-out batch, replies in r/BreakUps) reuses batch 9's regexes
    tenth = {n.removeprefix("b10_"): p for n, p in patterns.items() if 10 in p.batches}
    ninth_by = {n.removeprefix("b9_"): p for n, p in patterns.items() if 9 in p.batches}
    assert {n: (p.kind, p.regex.pattern) for n, p in tenth.items()} == {
        n: (p.kind, p.regex.pattern) for n, p in ninth_by.items()
    }
    # batch 11 (a training batch of forum replies) aims above all at upward comparison in the
    # form of sharing one's own recovery; each of its patterns that overlaps a batch-9 one matches
    # everything that one does (its regular expression is a superset, joined by "|")
    eleventh = {n: p for n, p in patterns.items() if 11 in p.batches}
    kinds = [p.kind for p in eleventh.values()]
    assert all(n.startswith("b11_") for n in eleventh)
    assert kinds.count("upward") >= 8 and kinds.count("upward") > kinds.count("downward") >= 3
    assert kinds.count("look-alike") >= 2 and "connection" in kinds
    widened = {"b11_if_i_can": "so_can_you", "b11_my_recovery": "recovered", "b11_worse": "others"}
    for name, ninth_name in widened.items():
        assert ninth_by[ninth_name].regex.pattern in eleventh[name].regex.pattern.split("|", 1)[1]
    assert eleventh["b11_time_clean"].regex.search("i'm 3 years clean and it gets easier")
    assert eleventh["b11_where_you_are"].regex.search("i was exactly where you are once")
    assert eleventh["b11_used_to_now"].regex.search("i used to cut every day, now i don't")
    # batch 12 (a comparison-rich training batch from sources already drawn) has only
    # comparison patterns, each matching everything the earlier patterns of its family match
    twelfth = {n: p for n, p in patterns.items() if 12 in p.batches}
    assert all(n.startswith("b12_") for n in twelfth)
    assert {p.kind for p in twelfth.values()} == {"upward", "downward"}
    families = {
        "b12_so_can_you": ["up_if_i_can"],
        "b12_you_will_too": ["b5_you_will_too"],
        "b12_recovered": ["b10_recovered", "up_turned_around", "up_living_proof"],
        "b12_lucky": ["down_you_are_lucky", "b8_lucky"],
        "b12_worse": ["b8_worse", "down_could_be_worse", "down_i_had_it_worse"],
        "b12_grateful": ["down_be_grateful"],
        "b12_not_that_bad": ["b10_not_that_bad", "b3_you_think_thats_bad", "try_having"],
    }
    for name, earlier in families.items():
        assert twelfth[name].kind == patterns[earlier[0]].kind
        alternatives = twelfth[name].regex.pattern.split("|")
        for old in earlier:
            assert all(part in alternatives for part in patterns[old].regex.pattern.split("|"))
    assert twelfth["b12_at_least_you"].regex.search("at least you still have your job")
    assert twelfth["b12_young"].regex.search("you're still young, you have your whole life ahead")
    assert twelfth["b12_if_i_can"].regex.search("if a girl like me can do it")


def test_sources_md_counts_match_the_keys() -> None:
    text = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    items = brc.read_items(REAL / "items.csv")
    # each batch's counts sit in its own section, "## Batch N ..." up to the next "## "
    for batch in {int(it["batch"]) for it in items}:
        section = re.search(rf"^## Batch {batch}\b.*?(?=^## |\Z)", text, re.M | re.S)
        assert section is not None, f"SOURCES.md has no '## Batch {batch}' section"
        for source, per in brc.arm_counts(items, batch).items():
            row = f"| `{source}` | {per.get('random', 0)} | {per.get('targeted', 0)} |"
            if "scored" in per:  # a batch with a scored arm has a column for it
                row += f" {per['scored']} |"
            assert row in section.group(0), (batch, row)


def test_context_never_holds_a_tab(tmp_path: Path) -> None:
    # a tab inside a neighbouring sentence would split the rebuilt TSV row for devcorpus's
    # unquoted reader (it happened in batch 6); the context shows it as a space
    repo = tmp_path / "replies"
    repo.mkdir()
    _git(repo, "init", "-q")
    rows = [{"id": "t1", "who": "supporter", "text": "Me too. I looked out\tat the sea. Hugs."}]
    commit, blob = _commit_csv(repo, rows, "tabbed")
    data = tmp_path / "keys"
    data.mkdir()
    _write_specs(data, commit, blob)
    assert _sample(repo, data) == 0
    specs, items = _load(data)
    rebuilt = brc.rebuild(items, specs, {"fixture": brc.Snapshot(repo)})
    assert len(rebuilt) == 3
    assert any("\t" in r["sentence"] for r in rebuilt)  # the hashed sentence keeps its tab
    for row in rebuilt:
        assert "\t" not in row["context"]
        assert "looked out at the sea" in row["context"]


def _draw_and_rebuild(
    repo: Path, specs: list[Any], seed: int, batch: int
) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """Draw ``batch`` from committed source specs pointed at the tiny snapshot ``repo``, check
    every item carries one of that batch's arms, and rebuild it: the items and the rebuilt rows
    by sentence.  The sources' quotas for other batches (a later batch drawing from them too)
    are left out."""
    import dataclasses

    assert all(batch in s.samples for s in specs)
    specs = [dataclasses.replace(s, samples={batch: s.samples[batch]}) for s in specs]
    spec = next(b for b in brc.load_batches(REAL / "sources.json") if b.batch == batch)
    patterns = brc.load_patterns(REAL / "patterns.json")
    snapshots = {s.id: brc.Snapshot(repo) for s in specs}
    items = brc.sample_items(specs, snapshots, patterns, seed, [spec])
    assert {it["batch"] for it in items} == {str(batch)}
    arms = {it["arm"] for it in items}
    assert arms <= {"random", *(f"targeted:{n}" for n in brc.patterns_for(patterns, batch))}
    rebuilt = {r["sentence"]: r for r in brc.rebuild(items, specs, snapshots)}
    return items, rebuilt


def _assert_stale_key_refused(repo: Path, specs: list[Any], items: list[dict[str, str]]) -> None:
    """A key whose sentence hash no longer matches its snapshot is reported, not rebuilt."""
    snapshots = {s.id: brc.Snapshot(repo) for s in specs}
    stale = [{**items[0], "sentence_sha256": "0" * 64}, *items[1:]]
    with pytest.raises(brc.RealCorpusError, match=items[0]["item_id"]):
        brc.rebuild(stale, specs, snapshots)


def test_batch_7_rows_rebuild_from_a_tiny_snapshot(tmp_path: Path) -> None:
    # batch 7's committed sources and patterns, pointed at a two-file stand-in for the
    # compilation: posts by id with their body, the moderators' and deleted ones dropped
    import dataclasses

    repo = tmp_path / "top"
    (repo / "data").mkdir(parents=True)
    _git(repo, "init", "-q")
    posts = {
        "data/MMFB.csv": [
            ("m1", "I was where you are. Now I'm two years clean. So can you!", ""),
            ("m2", "At least you still have your friends &amp; family.\n> quoted seeker", ""),
            ("m3", "Rules of this sub: be kind.", "moderator"),
        ],
        "data/getdisciplined.csv": [
            ("g1", "Stop making excuses. Me too, I know how you feel. Just start today.", ""),
            ("g2", "[deleted]", ""),
        ],
    }
    for path, rows in posts.items():
        with (repo / path).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "title", "selftext", "distinguished"])
            writer.writerows((id_, "a title", text, who) for id_, text, who in rows)
    _git(repo, "add", "data")
    _git(repo, "commit", "-q", "-m", "posts")
    commit = _git(repo, "rev-parse", "HEAD")
    seed, committed = brc.load_sources(REAL / "sources.json")
    specs = [
        dataclasses.replace(
            spec,
            commit=commit,
            files={p: _git(repo, "rev-parse", f"HEAD:{p}") for p in spec.files},
        )
        for spec in committed
        if spec.id in {"top_mmfb", "top_getdisciplined"}
    ]
    # every sentence of the kept posts, each once, tagged with a batch-7 arm
    items, rebuilt = _draw_and_rebuild(repo, specs, seed, 7)
    assert len(items) == 7
    assert "At least you still have your friends & family." in rebuilt  # entity unescaped
    assert rebuilt["So can you!"]["source"] == "top_mmfb"
    assert rebuilt["Just start today."]["record_id"] == "g1"
    assert not any("quoted" in s or "Rules" in s or "deleted" in s for s in rebuilt)
    _assert_stale_key_refused(repo, specs, items)


def test_batch_8_rows_rebuild_from_a_tiny_snapshot(tmp_path: Path) -> None:
    # batch 8's committed sources and patterns, pointed at a stand-in for the comment files:
    # one row per comment keyed by its post id, the post's author and bots dropped
    import dataclasses

    repo = tmp_path / "comments"
    folder = repo / "mitch_work" / "data" / "comments"
    folder.mkdir(parents=True)
    _git(repo, "init", "-q")
    comments = [
        ("p1", "I was in your shoes a year ago. Now I'm doing well. You can too!", "ann", "False"),
        ("p1", "Thanks, I needed that.", "op_writer", "True"),
        ("p1", "At least you have friends &amp; a dog.", "ben", "False"),
        ("p2", "Please read the rules of this sub.", "AutoModerator", "False"),
        ("p2", "[deleted]", "", "False"),
        ("p2", "Some people have it much worse. Me too, honestly.", "cat", "False"),
    ]
    seed, committed = brc.load_sources(REAL / "sources.json")
    (source,) = [spec for spec in committed if spec.id == "cm_suicidewatch"]
    (path,) = source.files
    with (repo / path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "Comment", "Author", "OP", "Post Date"])
        writer.writerows((post, text, who, op, "1716159148.0") for post, text, who, op in comments)
    _git(repo, "add", "mitch_work")
    _git(repo, "commit", "-q", "-m", "comments")
    commit = _git(repo, "rev-parse", "HEAD")
    blob = _git(repo, "rev-parse", f"HEAD:{path}")
    specs = [dataclasses.replace(source, commit=commit, files={path: blob})]
    # every sentence of the three kept comments, each once, tagged with a batch-8 arm
    items, rebuilt = _draw_and_rebuild(repo, specs, seed, 8)
    assert len(items) == 6
    assert "At least you have friends & a dog." in rebuilt  # entity unescaped
    # no comment id in the files: a record is the post id and the comment's row number
    assert rebuilt["You can too!"]["record_id"] == "p1:1"
    assert rebuilt["Me too, honestly."]["record_id"] == "p2:6"
    assert not any("Thanks" in s or "rules" in s or "deleted" in s for s in rebuilt)
    _assert_stale_key_refused(repo, specs, items)


def test_batch_9_rows_rebuild_from_tiny_snapshots(tmp_path: Path) -> None:
    # batch 9's committed sources and patterns, pointed at stand-ins for the two collectors'
    # files: r/BPD keyword-search comments with no is-submitter flag (the post's author is looked
    # up in the search file and dropped), and rows of comments joined by " || "
    import dataclasses

    seed, committed = brc.load_sources(REAL / "sources.json")
    by_id = {spec.id: spec for spec in committed}

    search = tmp_path / "search"
    (search / "Scraping_Reddit_for_Data").mkdir(parents=True)
    _git(search, "init", "-q")
    comments_path = "Scraping_Reddit_for_Data/recovery_comments.csv"
    posts_path = "Scraping_Reddit_for_Data/recovery_search.csv"
    comments = [
        ("I was in your shoes. Now I'm in remission. You can too!", "ann", "p1"),
        ("Thank you all, this helps.", "poster", "p1"),  # the post's author: dropped
        ("At least you have a therapist &amp; a plan.", "poster", "p2"),  # not p2's author
        ("I'm a bot, beep.", "helpful_bot", "p2"),
        ("[deleted]", "None", "p2"),
        ("Me too. It took me years.", "None", "p3"),  # p3's author deleted: kept
    ]
    with (search / comments_path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "Comment", "Author", "Post"])
        writer.writerows((n, *row) for n, row in enumerate(comments))
    with (search / posts_path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "Title", "Post Author", "ID"])
        writer.writerows([(0, "t", "poster", "p1"), (1, "t", "carl", "p2"), (2, "t", "None", "p3")])
    _git(search, "add", "Scraping_Reddit_for_Data")
    _git(search, "commit", "-q", "-m", "search")

    joined = tmp_path / "joined"
    (joined / "data").mkdir(parents=True)
    _git(joined, "init", "-q")
    hot_path = "data/mental_health_dataset.csv"
    rows = [
        ("Trust me, it gets better. || [removed] || Others have it worse, you know.", "depression"),
        ("", "Anxiety"),  # a post without comments
        ("Same here. I'm living proof that it can change.", "SuicideWatch"),
    ]
    with (joined / hot_path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "selftext", "comments", "created", "score", "url", "subreddit"])
        writer.writerows(
            ("t", "s", text, "1.0", "1", f"u{n}", sub) for n, (text, sub) in enumerate(rows)
        )
    _git(joined, "add", "data")
    _git(joined, "commit", "-q", "-m", "hot")

    lookup = by_id["cm_bpd_search"].drop_post_author
    assert lookup is not None and comments_path in lookup.files
    specs = [
        dataclasses.replace(
            by_id["cm_bpd_search"],
            commit=_git(search, "rev-parse", "HEAD"),
            files={comments_path: _git(search, "rev-parse", f"HEAD:{comments_path}")},
            drop_post_author=dataclasses.replace(
                lookup,
                files={
                    comments_path: (posts_path, _git(search, "rev-parse", f"HEAD:{posts_path}"))
                },
            ),
        ),
        dataclasses.replace(
            by_id["cm_hot_mh4"],
            commit=_git(joined, "rev-parse", "HEAD"),
            files={hot_path: _git(joined, "rev-parse", f"HEAD:{hot_path}")},
        ),
    ]
    repos = {"cm_bpd_search": search, "cm_hot_mh4": joined}
    snapshots = {s.id: brc.Snapshot(repos[s.id]) for s in specs}
    batch = next(b for b in brc.load_batches(REAL / "sources.json") if b.batch == 9)
    patterns = brc.load_patterns(REAL / "patterns.json")
    items = brc.sample_items(specs, snapshots, patterns, seed, [batch])
    assert {it["batch"] for it in items} == {"9"}
    assert {it["arm"] for it in items} <= {
        "random",
        *(f"targeted:{n}" for n in brc.patterns_for(patterns, 9)),
    }
    rebuilt = {r["sentence"]: r for r in brc.rebuild(items, specs, snapshots)}
    # the kept comments' sentences, each once: 3 + 1 + 2 (search) and 1 + 1 + 2 (joined)
    assert len(items) == len(rebuilt) == 10
    assert rebuilt["You can too!"]["record_id"] == "p1:1"
    assert "At least you have a therapist & a plan." in rebuilt  # entity unescaped
    assert rebuilt["It took me years."]["record_id"] == "p3:6"
    assert not any("Thank you" in s or "bot" in s or "deleted" in s for s in rebuilt)
    # a joined row is one record per comment: row number and the comment's place in the row
    assert rebuilt["Trust me, it gets better."]["record_id"] == "1:1"
    assert rebuilt["Others have it worse, you know."]["record_id"] == "1:3"
    assert rebuilt["Others have it worse, you know."]["context"] == (
        "[[Others have it worse, you know.]]"
    )
    assert rebuilt["Same here."]["record_id"] == "3:1"
    assert not any("removed" in s or "||" in s for s in rebuilt)
    # a post whose author changes between rows of the search file is refused, not guessed
    with (search / posts_path).open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow([3, "t", "someone_else", "p1"])
    _git(search, "commit", "-qam", "p1 twice")
    moved = dataclasses.replace(
        specs[0],
        commit=_git(search, "rev-parse", "HEAD"),
        drop_post_author=dataclasses.replace(
            lookup,
            files={comments_path: (posts_path, _git(search, "rev-parse", f"HEAD:{posts_path}"))},
        ),
    )
    with pytest.raises(brc.RealCorpusError, match="post p1 has two authors"):
        brc.read_records(moved, brc.Snapshot(search))
    _assert_stale_key_refused(
        joined, specs[1:], [it for it in items if it["source"] == "cm_hot_mh4"]
    )


def test_split_text_and_post_author_lookups_are_validated(tmp_path: Path) -> None:
    base = {
        "id": "s",
        "repo": "o/r",
        "commit": "0" * 40,
        "files": {"c.csv": "1" * 40},
        "format": "csv",
        "record_id": ["id"],
        "text": "text",
        "clean": "plain",
        "samples": {},
    }
    # each refused spec, with the start of the message that names its mistake
    bad = [
        ({"split_text": ""}, "split_text must be non-empty"),
        ({"split_text": "|", "group_by": ["g"], "order_by": "o"}, "split_text must be non-empty"),
        (
            {
                "drop_post_author": {
                    "post": "Post",
                    "author": "Author",
                    "posts_id": "ID",
                    "posts_author": "Post Author",
                    "files": {"other.csv": {"path": "p.csv", "blob": "2" * 40}},
                }
            },
            r"drop_post_author names unread files \['other.csv'\]",
        ),
        ({"drop_post_author": {"post": "Post"}}, "missing key 'drop_post_author.author'"),
    ]
    path = tmp_path / "sources.json"
    for extra, message in bad:
        spec = {"seed": 1, "batches": {"1": {"distinct": "batch"}}, "sources": [{**base, **extra}]}
        path.write_text(json.dumps(spec))
        with pytest.raises(brc.RealCorpusError, match=message):
            brc.load_sources(path)


def test_batch_11_forum_threads_rebuild_from_tiny_snapshots(tmp_path: Path) -> None:
    # batch 11's committed sources and patterns, pointed at stand-ins for the two forum scrapes:
    # one CSV per thread whose posts are the repr of their UTF-8 bytes (the starter's posts
    # dropped), and a JSON array of threads (each thread's first post and quoting posts dropped)
    import dataclasses

    seed, committed = brc.load_sources(REAL / "sources.json")
    by_id = {spec.id: spec for spec in committed}

    forum = tmp_path / "forum"
    (forum / "data").mkdir(parents=True)
    _git(forum, "init", "-q")
    thread_path = "data/thread.csv"
    posts = [
        ("starter", "b'I feel so low, nothing helps.'", ""),
        (
            "helper",
            'b"I was where you are. Now I\\\'m 2 years clean \\xe2\\x80\\x93 so can you."',
            "",
        ),
        ("starter", "b'Thank you, that means a lot.'", "helper"),  # the starter again: dropped
        ("other", "b'At least you have a GP.\\nHang in there.'", "starter"),
        ("bot", "b''", ""),  # empty once decoded
    ]
    with (forum / thread_path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "date", "username", "post content", "quoted user", "post mood"])
        writer.writerows(
            (n, "2012-01-01", user, text, quoted, "None")
            for n, (user, text, quoted) in enumerate(posts)
        )
    _git(forum, "add", "data")
    _git(forum, "commit", "-q", "-m", "thread")

    boards = tmp_path / "boards"
    (boards / "raw").mkdir(parents=True)
    _git(boards, "init", "-q")
    json_path = "raw/threads.json"
    threads = [
        {
            "thread_url": "u1",
            "title": "t",
            "category": "ocd",
            "posts": [
                "My story, help.",
                "Me too. It gets better, trust me.",
                "ann wrote: help Same.",
            ],
        },
        {"thread_url": "u2", "title": "t", "category": "ptsd", "posts": ["Sticky notice."]},
        {
            "thread_url": "u3",
            "title": "t",
            "category": "depression",
            "posts": ["Low again.", "Others have it worse, you know."],
        },
    ]
    (boards / json_path).write_text(json.dumps(threads), encoding="utf-8")
    _git(boards, "add", "raw")
    _git(boards, "commit", "-q", "-m", "threads")

    specs = [
        dataclasses.replace(
            by_id["fm_mhf_threads"],
            commit=_git(forum, "rev-parse", "HEAD"),
            files={thread_path: _git(forum, "rev-parse", f"HEAD:{thread_path}")},
        ),
        dataclasses.replace(
            by_id["fm_psychforums"],
            commit=_git(boards, "rev-parse", "HEAD"),
            files={json_path: _git(boards, "rev-parse", f"HEAD:{json_path}")},
        ),
    ]
    repos = {"fm_mhf_threads": forum, "fm_psychforums": boards}
    snapshots = {s.id: brc.Snapshot(repos[s.id]) for s in specs}
    records = brc.read_records(specs[0], snapshots["fm_mhf_threads"])
    # the starter's two posts and the empty one are gone; escapes and the line break decoded
    assert records == {
        (thread_path, "2"): "I was where you are. Now I'm 2 years clean \u2013 so can you.",
        (thread_path, "4"): "At least you have a GP.\nHang in there.",
    }
    assert list(brc.read_records(specs[1], snapshots["fm_psychforums"]).values()) == [
        "Me too. It gets better, trust me.",
        "Others have it worse, you know.",
    ]
    batch = next(b for b in brc.load_batches(REAL / "sources.json") if b.batch == 11)
    patterns = brc.load_patterns(REAL / "patterns.json")
    items = brc.sample_items(specs, snapshots, patterns, seed, [batch])
    rebuilt = {r["sentence"]: r for r in brc.rebuild(items, specs, snapshots)}
    assert len(items) == len(rebuilt) == 7
    assert rebuilt["Hang in there."]["record_id"] == "4"
    assert rebuilt["Others have it worse, you know."]["record_id"] == "3:2"
    assert not any("Thank you" in s or "wrote" in s or "Sticky" in s for s in rebuilt)
    _assert_stale_key_refused(
        boards, specs[1:], [it for it in items if it["source"] == "fm_psychforums"]
    )


def test_forum_readers_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    assert brc._clean_bytes_literal("b'caf\\xc3\\xa9 \\\\o/'") == "caf\u00e9 \\o/"
    assert brc._clean_bytes_literal("not a literal") == "not a literal"
    with pytest.raises(brc.RealCorpusError, match="thread 2 has no list of text posts"):
        list(
            brc._rows(json.dumps([{"posts": ["a"]}, {"posts": "b"}]).encode(), "json_threads", "f")
        )
    with pytest.raises(brc.RealCorpusError, match="not a JSON array of threads"):
        list(brc._rows(b"{}", "json_threads", "f"))
    base = {
        "id": "s",
        "repo": "o/r",
        "commit": "0" * 40,
        "files": {"c.csv": "1" * 40},
        "format": "csv",
        "record_id": ["id"],
        "text": "text",
        "clean": "plain",
        "samples": {},
        "drop_thread_starter": "",
    }
    path = tmp_path / "sources.json"
    path.write_text(
        json.dumps({"seed": 1, "batches": {"1": {"distinct": "batch"}}, "sources": [base]})
    )
    with pytest.raises(brc.RealCorpusError, match="drop_thread_starter must name a column"):
        brc.load_sources(path)


# --- the scored arm (a committed selection file) ---------------------------------------------


def _with_selection(
    corpus: tuple[Path, Path, str], picks: list[tuple[str, str]], n_scored: int, n_random: int = 1
) -> tuple[Path, Path]:
    """The corpus fixture with a batch 2 whose scored arm is ``picks`` ((SHA-256, arm) pairs)."""
    repo, data, _ = corpus
    specs = json.loads((data / "sources.json").read_text())
    specs["batches"]["2"] = {"distinct": "batch", "selection": "selections/batch2.tsv"}
    specs["sources"][0]["samples"]["2"] = {
        "n_random": n_random,
        "n_targeted": 0,
        "n_scored": n_scored,
    }
    (data / "sources.json").write_text(json.dumps(specs))
    (data / "selections").mkdir(exist_ok=True)
    lines = ["source\tsentence_sha256\tarm\tscore"]
    lines += [f"fixture\t{digest}\t{arm}\t0.9" for digest, arm in picks]
    (data / "selections/batch2.tsv").write_text("\n".join(lines) + "\n")
    return repo, data


def _undrawn(repo: Path, data: Path) -> list[str]:
    """The fixture source's sentence hashes that batch 1 did not draw, in record order."""
    specs, items = _load(data)
    units = brc.units_of("fixture", brc.read_records(specs[0], brc.Snapshot(repo)))
    _, digests = brc.undrawn_pool(units, {it["sentence_sha256"] for it in items})
    return list(digests)


def test_a_scored_arm_draws_exactly_its_selection(corpus: tuple[Path, Path, str]) -> None:
    repo, data, _ = corpus
    undrawn = _undrawn(repo, data)
    assert len(undrawn) >= 3
    picks = [(undrawn[-1], "upward_top"), (undrawn[0], "downward_band")]
    _with_selection(corpus, picks, n_scored=2, n_random=1)
    argv = ["sample", "--data", str(data), "--append", "2", "--snapshot", f"fixture={repo}"]
    assert brc.main(argv) == 0
    second = [it for it in brc.read_items(data / "items.csv") if it["batch"] == "2"]
    scored = {it["sentence_sha256"]: it["arm"] for it in second if it["arm"] != "random"}
    assert scored == {undrawn[-1]: "scored:upward_top", undrawn[0]: "scored:downward_band"}
    # the random arm comes from the rest of the pool, never from the selection
    randoms = [it["sentence_sha256"] for it in second if it["arm"] == "random"]
    assert len(randoms) == 1 and randoms[0] in set(undrawn) - set(scored)
    appended = (data / "items.csv").read_text()
    assert _sample(repo, data) == 0  # a full re-sample draws the same batch
    assert (data / "items.csv").read_text() == appended
    assert brc.arm_counts(brc.read_items(data / "items.csv"), 2)["fixture"]["scored"] == 2


def test_a_selection_that_cannot_be_drawn_is_refused(corpus: tuple[Path, Path, str]) -> None:
    repo, data, _ = corpus
    before = (data / "items.csv").read_text()
    drawn_by_batch_1 = brc.read_items(data / "items.csv")[0]["sentence_sha256"]
    argv = ["sample", "--data", str(data), "--append", "2", "--snapshot", f"fixture={repo}"]
    # a sentence batch 1 already drew
    _with_selection(corpus, [(drawn_by_batch_1, "upward_top")], n_scored=1)
    assert brc.main(argv) == 2
    assert (data / "items.csv").read_text() == before
    undrawn = _undrawn(repo, data)
    # n_scored disagreeing with the file
    _with_selection(corpus, [(undrawn[0], "upward_top")], n_scored=2)
    with pytest.raises(brc.RealCorpusError, match="n_scored is 2 but its selection lists 1"):
        brc.load_sources(data / "sources.json")
    # a sentence listed twice, and a malformed hash
    _with_selection(corpus, [(undrawn[0], "upward_top"), (undrawn[0], "down")], n_scored=2)
    with pytest.raises(brc.RealCorpusError, match=r"row 3: sentence .* is selected twice"):
        brc.load_sources(data / "sources.json")
    _with_selection(corpus, [("abc", "upward_top")], n_scored=1)
    with pytest.raises(brc.RealCorpusError, match="row 2: needs a source, a 64-hex"):
        brc.load_sources(data / "sources.json")
    assert brc.main(argv) == 2
    assert (data / "items.csv").read_text() == before


def test_a_repeated_scrape_row_is_skipped_only_when_its_text_is_the_same(tmp_path: Path) -> None:
    repo = tmp_path / "scrape"
    repo.mkdir()
    _git(repo, "init", "-q")

    def commit(rows: list[tuple[str, str, str]]) -> tuple[str, str]:
        (repo / "c.csv").write_text(
            "cid,score,body\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8"
        )
        _git(repo, "add", "c.csv")
        _git(repo, "commit", "-q", "-m", "rows")
        return _git(repo, "rev-parse", "HEAD"), _git(repo, "rev-parse", "HEAD:c.csv")

    head, blob = commit([("a", "1", "Me too."), ("b", "2", "Hang on."), ("a", "5", "Me too.")])
    spec = {
        "id": "scrape",
        "repo": "example/scrape",
        "commit": head,
        "files": {"c.csv": blob},
        "format": "csv",
        "record_id": ["cid"],
        "text": "body",
        "clean": "reddit",
        "samples": {},
    }
    path = tmp_path / "sources.json"

    def read(**extra: object) -> dict[tuple[str, str], str]:
        path.write_text(json.dumps({"seed": 1, "batches": {}, "sources": [{**spec, **extra}]}))
        return brc.read_records(brc.load_sources(path)[1][0], brc.Snapshot(repo))

    # without the option a repeated id is refused, as before
    with pytest.raises(brc.RealCorpusError, match=r"c.csv: data row 3: record id a repeats$"):
        read()
    # with it, the same comment scraped twice (only its score changed) is one record
    assert read(repeated_ids="same_text") == {("c.csv", "a"): "Me too.", ("c.csv", "b"): "Hang on."}
    # a repeated id with another text is refused, naming the row
    head, blob = commit([("a", "1", "Me too."), ("a", "1", "Edited later.")])
    spec.update(commit=head, files={"c.csv": blob})
    with pytest.raises(brc.RealCorpusError, match="data row 2: record id a repeats with another"):
        read(repeated_ids="same_text")
    with pytest.raises(brc.RealCorpusError, match="repeated_ids 'yes' is not"):
        read(repeated_ids="yes")
