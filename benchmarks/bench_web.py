"""Web app benchmark: 200 participants at once answering the SCS page by page through their
personal links against a real ``peerlens serve`` (uvicorn), on SQLite and on PostgreSQL.

For each backend a study is created through the study API (the SCS at baseline, 26 items on 3
pages, with a consent text) with 200 participants and a personal link each; ``peerlens serve``
is started as a subprocess on a free port; then 200 simulated participants, each an async HTTP
client (httpx), open their link, agree to the consent text and answer every page: each page is
fetched, its form parsed (CSRF token, hidden fields, radio groups), a random offered answer
chosen per question, and the form posted (a 303 back to the link, which is fetched in turn).
Each participant waits a random "reading time" before each post (``--think`` seconds on
average, uniform from half to one and a half of it), so 200 participants keep about
``400 / think`` requests a second coming. Every request's latency is recorded.

The default reading time, 20 s a page, is the least an attentive participant takes: an SCS
page holds 8 or 9 items, and answering faster than 2 s an item is the accepted mark of
insufficient-effort responding (Huang et al. 2012, J Bus Psychol 27:99-114; the page-time
index built on it was validated by Bowling et al. 2023, Organ Res Methods 26:323-352,
doi:10.1177/10944281211056520), so a careful reader needs at least 16 to 18 s a page, and
more on a phone, where item response times are about 1.2 to 1.4 times those on a computer
(Andreadis 2015, methods, data, analyses 9:213-228; Antoun and Cernat 2020, Soc Sci Comput Rev,
doi:10.1177/0894439318823703). 200 participants at once at that pace are about 20 requests a
second (an SCS wave of 200 people all answering in the same minute is already a peak).
``--think`` sweeps other paces; the floor below is measured at the same pace.

Afterwards every answer sent is checked against the database (read with SQL, not through the
app): lost (sent, not stored), changed (stored with another value), duplicated (more than one
response per participant and form, or an item stored twice) and unexpected (stored, never sent)
answers must all be 0, and every form complete.

Target: p95 latency of the participants' requests < 100 ms, nothing lost or duplicated.
The target is absolute; there is no peer web app for this workload. As a reference measured in
the same run, the same 200 clients drive a minimal FastAPI app (``benchmarks/_web_floor.py``:
the same request shape, uvicorn settings and client, no database, templates, CSRF or audit):
the floor of the server stack and of the load generator on this machine, which is not a peer.

PostgreSQL runs when ``PEERLENS_BENCH_PG_URL`` or ``PEERLENS_TEST_PG_URL`` is set (a fresh
schema is created and dropped). Run: ``python benchmarks/bench_web.py [--participants N]
[--think SECONDS] [--backends sqlite,postgresql]``. ``--think 0`` makes every participant send
as fast as it is answered: a saturation test (throughput), where latency is queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peerlens
from _bench_db import backend_url, drop
from peerlens.study import (
    NewParticipant,
    Store,
    add_participants,
    bootstrap_admin,
    create_study,
    issue_link,
)
from peerlens.study.vault import generate_key

HERE = Path(__file__).resolve().parent
TARGET_P95_MS = 100.0
#: Mean reading time of a page, seconds (see the module docstring for why 20).
THINK_S = 20.0
CONFIG = """title: Web benchmark
sites: [leeds, glasgow]
missing_codes: [-99]
consent:
  version: v1
  text: I agree to take part.
timepoints:
  - name: baseline
    instruments: [scs]
"""

_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_RADIO = re.compile(r'<input type="radio" id="([^"]+)" name="([^"]+)" value="([^"]*)"')


@dataclass
class Run:
    """What one load run measured: per-request latencies (by kind), what each participant
    sent (participant -> item -> value), failures, wall time and the server's CPU time."""

    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {"GET": [], "POST": []})
    sent: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    finished: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _study(url: str, folder: Path, n: int) -> list[str]:
    """Create the study with ``n`` participants through the study API; their link paths."""
    store = Store.open(url, create=True, blob_dir=folder / "blobs")
    try:
        me = bootstrap_admin(store, "bench", "benchmark password")
        config = folder / "study.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        create_study(store, "web", config, caller=me)
        codes = [f"W{i:04d}" for i in range(n)]
        add_participants(
            store,
            "web",
            [NewParticipant(c, site=("leeds", "glasgow")[i % 2]) for i, c in enumerate(codes)],
            caller=me,
        )
        links = []
        for code in codes:
            issued = issue_link(store, "web", code, timepoint="baseline", caller=me)
            links.append(f"/p/{code}/{issued.token}")
        return links
    finally:
        store.close()


def _start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a server and wait until it accepts connections."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("server did not start within 60 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


async def _participant(
    client: httpx.AsyncClient, link: str, think: float, rng: random.Random, run: Run
) -> None:
    """One participant: open the link and answer every form until none is left."""
    code = link.split("/")[2]
    run.sent[code] = {}
    await asyncio.sleep(rng.uniform(0, think))  # participants do not all start at one instant

    async def timed(method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        start = time.perf_counter()
        response = await client.request(method, url, data=data)
        run.latency_ms[method].append((time.perf_counter() - start) * 1000)
        return response

    try:
        await _answer_all(code, link, timed, think, rng, run)
    except httpx.TransportError as exc:
        run.failures.append(f"{code}: {type(exc).__name__}")


async def _answer_all(
    code: str,
    link: str,
    timed: Callable[..., Awaitable[httpx.Response]],
    think: float,
    rng: random.Random,
    run: Run,
) -> None:
    sent = run.sent[code]
    response = await timed("GET", link)
    for _ in range(20):
        if response.status_code != 200:
            run.failures.append(f"{code}: {response.status_code} on GET")
            return
        html = response.text
        action = _FORM.search(html)
        if action is None or action.group(1).endswith("/withdraw"):
            run.finished += 1
            return
        data = dict(_HIDDEN.findall(html))
        answers: dict[str, list[str]] = {}
        for ident, name, value in _RADIO.findall(html):
            if not ident.endswith("-skip"):
                answers.setdefault(name, []).append(value)
        chosen = {name: rng.choice(values) for name, values in answers.items()}
        data.update(chosen)
        if think:
            await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
        posted = await timed("POST", action.group(1), data)
        if posted.status_code != 303:
            run.failures.append(f"{code}: {posted.status_code} on POST {action.group(1)}")
            return
        sent.update(chosen)
        response = await timed("GET", posted.headers["location"])
    run.failures.append(f"{code}: never finished")


async def _drive(base_url: str, links: list[str], think: float, seed: int) -> Run:
    run = Run()
    rng = random.Random(seed)
    # uvicorn closes a connection idle for 5 s; a browser reopens it, so the client lets idle
    # connections go first rather than race the server's close.
    limits = httpx.Limits(
        max_connections=len(links), max_keepalive_connections=len(links), keepalive_expiry=4.0
    )
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(
            *(_participant(client, link, think, random.Random(rng.random()), run) for link in links)
        )
        run.wall_s = time.perf_counter() - start
    return run


def _load(
    command: list[str], env: dict[str, str], port: int, links: list[str], think: float, seed: int
) -> Run:
    proc = _start(command, port, env)
    try:
        cpu = _cpu_seconds(proc)
        run = asyncio.run(_drive(f"http://127.0.0.1:{port}", links, think, seed))
        run.server_cpu_s = _cpu_seconds(proc) - cpu
    finally:
        _stop(proc)
    return run


def _check(url: str, sent: dict[str, dict[str, str]]) -> dict[str, int]:
    """Every answer sent against what the database holds (read with SQL)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            per_form = conn.execute(
                text(
                    "SELECT p.study_code, r.instrument, count(*) FROM response r "
                    "JOIN participant p ON p.id = r.participant_id "
                    "GROUP BY p.study_code, r.instrument"
                )
            ).all()
            rows = conn.execute(
                text(
                    "SELECT p.study_code, i.item, i.value, i.missing_code, r.completion "
                    "FROM response r JOIN participant p ON p.id = r.participant_id "
                    "JOIN response_item i ON i.response_id = r.id"
                )
            ).all()
    finally:
        engine.dispose()
    stored: dict[tuple[str, str], list[float | None]] = {}
    incomplete = set()
    for code, item, value, missing, completion in rows:
        stored.setdefault((code, item), []).append(None if missing is not None else value)
        if completion != 2:
            incomplete.add(code)
    expected = {(c, i): v for c, items in sent.items() for i, v in items.items()}
    counts = Counter(
        lost=sum(k not in stored for k in expected),
        changed=sum(
            k in stored and any(v is None or float(s) != v for v in stored[k])
            for k, s in expected.items()
        ),
        duplicated=sum(len(v) > 1 for v in stored.values()) + sum(n > 1 for _, _, n in per_form),
        unexpected=sum(k not in expected for k in stored),
    )
    counts["incomplete forms"] = len(incomplete)
    counts["answers sent"] = len(expected)
    return dict(counts)


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99]) if values else (np.nan,) * 3
    return float(p50), float(p95), float(p99)


def _report(label: str, run: Run, n: int) -> float:
    every = run.latency_ms["GET"] + run.latency_ms["POST"]
    p50, p95, p99 = _percentiles(every)
    requests = len(every)
    print(
        f"{label:<24}{requests:>9}{p50:>8.1f}{p95:>8.1f}{p99:>8.1f}"
        f"{max(every, default=np.nan):>8.0f}{requests / run.wall_s:>9.1f}"
        f"{1000 * run.server_cpu_s / max(requests, 1):>9.2f}{run.finished:>5}/{n}"
    )
    for kind in ("GET", "POST"):
        k50, k95, _ = _percentiles(run.latency_ms[kind])
        print(f"  {kind:<22}{len(run.latency_ms[kind]):>9}{k50:>8.1f}{k95:>8.1f}")
    for failure in run.failures[:5]:
        print(f"  failure: {failure}")
    return p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument(
        "--think", type=float, default=THINK_S, help="mean seconds before a post (default 20)"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    n = args.participants
    backends = args.backends.split(",")
    if "postgresql" in backends and not (
        os.environ.get("PEERLENS_BENCH_PG_URL") or os.environ.get("PEERLENS_TEST_PG_URL")
    ):
        print("PostgreSQL skipped: set PEERLENS_BENCH_PG_URL or PEERLENS_TEST_PG_URL")
        backends.remove("postgresql")
    env = dict(os.environ)
    env.setdefault("PEERLENS_VAULT_KEY", generate_key())
    os.environ["PEERLENS_VAULT_KEY"] = env["PEERLENS_VAULT_KEY"]
    env["PEERLENS_WEB_SECRET"] = uuid.uuid4().hex
    # The server imports the same peerlens as this script.
    src = str(Path(peerlens.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    print(
        f"{n} participants, SCS (26 items, 3 pages) after a consent page, mean reading time "
        f"{args.think:g} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(
        f"{'server':<24}{'requests':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'req/s':>9}{'cpu ms/r':>9}{'done':>9}"
    )
    floor_links = [f"/p/F{i:04d}/t" for i in range(n)]
    port = _free_port()
    floor = _load(
        [sys.executable, str(HERE / "_web_floor.py"), str(port)],
        env,
        port,
        floor_links,
        args.think,
        args.seed,
    )
    _report("floor (FastAPI hello)", floor, n)
    ok = True
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            url, cleanup = backend_url(backend, Path(tmp), file="web.db", prefix="benchweb")
            try:
                links = _study(url, Path(tmp), n)
                port = _free_port()
                command = [
                    sys.executable,
                    "-c",
                    "from peerlens.cli import app; app()",
                    "serve",
                    "--db",
                    url,
                    "--port",
                    str(port),
                ]
                run = _load(command, env, port, links, args.think, args.seed)
                p95 = _report(f"peerlens serve {backend}", run, n)
                checked = _check(url, run.sent)
            finally:
                drop(cleanup)
        bad = sum(checked[k] for k in ("lost", "changed", "duplicated", "unexpected"))
        bad += checked["incomplete forms"] + len(run.failures)
        met = p95 < TARGET_P95_MS and bad == 0 and run.finished == n
        ok = ok and met
        print(
            "  database: "
            + ", ".join(f"{k} {v}" for k, v in checked.items())
            + f"; p95 {p95:.1f} ms vs target {TARGET_P95_MS:.0f} ms "
            + f"({p95 / _percentiles(floor.latency_ms['GET'] + floor.latency_ms['POST'])[1]:.1f}"
            + f" x the floor's p95): {'MET' if met else 'MISSED'}"
        )
    print(
        "floor = a minimal FastAPI app on the same uvicorn settings and client (no database, "
        "templates, CSRF or audit): the stack's floor on this machine, not a peer; "
        f"load average after: {os.getloadavg()[0]:.2f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
