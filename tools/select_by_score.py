"""Pick a batch's ``scored`` arm: the undrawn sentences a scoring model ranks as likely comparisons.

Comparisons are rare in real supporters' text (about 1 sentence in 600 at random) and the phrase
patterns of the targeted arm find only the forms someone thought of.  This tool trains a fast
scoring model on every labelled, non-held-out sentence (the project corpus's train split plus the
development batches), scores every sentence of the named sources that no batch has drawn, and
writes the batch's **selection file**: per comparison class, the ``top`` sentences by that class's
probability (arm ``<class>_top``: the likeliest comparisons and the look-alikes the model
confuses with them) and ``band`` drawn at random (seeded) from the next ``band_depth`` ranks (arm
``<class>_band``: lower-scored comparisons, including forms without a known cue, and ordinary
sentences near the boundary).  Upward is ranked first; a sentence is selected at most once.

The file holds keys only (source, sentence SHA-256, arm, score, rank): no text.  It is committed
beside ``sources.json``, whose batch names it (``"selection"``) and whose sources give its counts
(``n_scored``), so ``build_real_corpus.py sample`` redraws the batch exactly without this tool or
its model.  Run::

    PYTHONPATH=src python tools/select_by_score.py --batch 14 --sources reddit_genz6,cm_bpd \\
        --top 500 --band 500 --band-depth 5000 --mirror-root DIR \\
        --out benchmarks/story_data/real/selections/batch14.tsv

The real texts of the labelled batches must be rebuilt first (``build_real_corpus.py build``).
Exit status 2, with the reason, if a source is unknown or belongs to a held-out batch, a
snapshot is missing or does not match, or the output exists.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peerlens import PeerlensError
from peerlens.narrative.corpus import load_corpus
from peerlens.narrative.devcorpus import (
    DevCorpusPaths,
    dev_corpus_paths,
    held_out_batches,
    load_dev_corpus,
)
from peerlens.narrative.model import ModelConfig, TextModel, train_model
from peerlens.narrative.release import train_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_real_corpus as brc

ROOT = brc.ROOT
#: The scoring model: TF-IDF word and character n-grams plus the cue indicators, balanced class
#: weights, comparisons weighted twice, C = 10; no sentence embedding and no neighbours, so that
#: hundreds of thousands of sentences score in minutes on two cores.
SCORER_CONFIG = ModelConfig(class_weight="balanced", comparison_weight=2.0, C=10.0)
#: The classes ranked, in the order they pick.
RANKED = ("upward", "downward")
#: Columns of the selection file (``build_real_corpus.SELECTION_COLUMNS`` first).
COLUMNS = (*brc.SELECTION_COLUMNS, "score", "rank")


@dataclass(frozen=True)
class Candidate:
    """One undrawn sentence of a source, with the scoring model's probabilities."""

    source: str
    digest: str
    scores: dict[str, float]


def score_pool(
    model: TextModel, sentences: Sequence[str], chunk: int = 20000
) -> dict[str, np.ndarray]:
    """Class probabilities of each sentence, scored alone (no neighbours), by class name."""
    parts = [
        model.predict_proba(list(sentences[i : i + chunk])) for i in range(0, len(sentences), chunk)
    ]
    proba = np.vstack(parts) if parts else np.zeros((0, len(model.classes)))
    return {label: proba[:, k] for k, label in enumerate(model.classes)}


def select(
    candidates: Sequence[Candidate], top: int, band: int, band_depth: int, seed: str
) -> list[dict[str, str]]:
    """The selection rows: per ranked class its ``top`` and its seeded ``band`` sample.

    Candidates are ranked by the class's probability, highest first, ties by SHA-256; a
    sentence already selected (for an earlier class) is skipped.
    """
    taken: set[str] = set()
    rows: list[dict[str, str]] = []
    for label in RANKED:
        ranked = sorted(
            (c for c in candidates if c.digest not in taken),
            key=lambda c: (-c.scores[label], c.digest),
        )
        head = ranked[:top]
        depth = ranked[top : top + band_depth]
        rng = random.Random(f"{seed}:{label}")
        sampled = sorted(rng.sample(range(len(depth)), min(band, len(depth))))
        for arm, chosen in (
            (f"{label}_top", [(r, c) for r, c in enumerate(head, start=1)]),
            (f"{label}_band", [(top + 1 + i, depth[i]) for i in sampled]),
        ):
            for rank, c in chosen:
                taken.add(c.digest)
                rows.append(
                    {
                        "source": c.source,
                        "sentence_sha256": c.digest,
                        "arm": arm,
                        "score": f"{c.scores[label]:.6f}",
                        "rank": str(rank),
                    }
                )
    return rows


def write_selection(rows: Sequence[dict[str, str]], path: Path) -> None:
    """Write the selection file (tab-separated, keys only); refuses to overwrite one."""
    if path.exists():
        raise brc.RealCorpusError(f"{path} exists: a committed selection is never rewritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    with part.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    part.replace(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, required=True, help="the batch the arm is for")
    parser.add_argument("--sources", required=True, help="comma-separated source ids to score")
    parser.add_argument("--top", type=int, required=True, help="highest-ranked per class")
    parser.add_argument("--band", type=int, required=True, help="random draws per class below")
    parser.add_argument("--band-depth", type=int, required=True, help="ranks the band spans")
    parser.add_argument("--out", type=Path, required=True, help="the selection file to write")
    parser.add_argument("--snapshot", action="append", default=[], metavar="SOURCE_ID=GIT_DIR")
    parser.add_argument("--mirror-root", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=brc.DATA_DIR, help="corpus key directory")
    return parser


def run(args: argparse.Namespace) -> list[dict[str, str]]:
    """Score and select; returns the rows written."""
    if min(args.top, args.band, args.band_depth) < 0 or args.band > args.band_depth:
        raise brc.RealCorpusError("--top, --band, --band-depth must be >= 0, band <= depth")
    seed, specs = brc.load_sources(args.data / "sources.json")
    by_id = {s.id: s for s in specs}
    wanted = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(by_id))
    if unknown:
        raise brc.RealCorpusError(f"--sources: unknown {unknown}; known: {sorted(by_id)}")
    paths = DevCorpusPaths(args.data, dev_corpus_paths(ROOT).rebuilt)
    held = held_out_batches(paths)
    reserved = [s for s in wanted if set(by_id[s].samples) & held]
    if reserved:
        raise brc.RealCorpusError(f"--sources: {reserved} belong to a held-out batch")
    items = brc.read_items(args.data / "items.csv")
    if any(int(it["batch"]) >= args.batch for it in items):
        raise brc.RealCorpusError(f"items.csv already holds batch {args.batch} or a later one")
    drawn = {it["sentence_sha256"] for it in items}
    # the packaged model's training rows (own train split + every labelled real sentence)
    model = train_model(train_frame(load_corpus(), load_dev_corpus(paths)), SCORER_CONFIG)
    print(f"scorer: {model.version}, trained on {model.meta['n_train']} sentences")
    snapshots = brc.snapshots_from_args(specs, args.snapshot, args.mirror_root, wanted)
    candidates: list[Candidate] = []
    claimed: set[str] = set()
    for source in wanted:
        units = brc.units_of(source, brc.read_records(by_id[source], snapshots[source]))
        pool, digests = brc.undrawn_pool(units, drawn | claimed)
        claimed.update(digests)
        probs = score_pool(model, [u.sentence for u in pool])
        candidates.extend(
            Candidate(source, d, {lab: float(probs[lab][i]) for lab in RANKED})
            for i, d in enumerate(digests)
        )
        print(f"  {source}: {len(pool)} undrawn sentences scored")
    rows = select(candidates, args.top, args.band, args.band_depth, f"{seed}:batch{args.batch}")
    write_selection(rows, args.out)
    counts = Counter((r["source"], r["arm"]) for r in rows)
    for source in wanted:
        per = {arm: n for (src, arm), n in counts.items() if src == source}
        print(f"  {source}: n_scored {sum(per.values())} {dict(sorted(per.items()))}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        rows = run(args)
    except (brc.RealCorpusError, PeerlensError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} selected sentences to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
