"""Load with a rebuild in the middle: 32 concurrent clients asking varied questions of `rag serve` for 60 s, while
a new document is added to the corpus and `POST /api/reindex` rebuilds the index under them.

Passes when no request fails (a 409 for the second, deliberately overlapping, reindex request is the expected
answer, not a failure), and when, once the rebuild has completed, a question about the new document is answered
from it. Loopback only; bounded in time (the given seconds) and in count (20,000 requests).

    .venv/bin/python bench/soak.py [--seconds 60] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import write_result  # noqa: E402
from bench.load import MAX_REQUESTS, REQUEST_TIMEOUT_S, Questions, Tally, client_loop  # noqa: E402
from bench.server import CpuMeter, Server, rag_env, workspace  # noqa: E402

TOKEN = "soak-test-token"
NEW_DOC = (
    "Kestrel Harbour Ferry Timetable\n\n"
    "The Kestrel Harbour ferry leaves the north pier every 40 minutes from 6:20 a.m. until 11:40 p.m. "
    "The crossing to Gull Island takes 25 minutes and a return ticket costs 7 euros.\n"
)
PROBE = "How long does the crossing to Gull Island take?"


async def rebuild_midway(client: httpx.AsyncClient, corpus: Path, at_s: float) -> dict[str, Any]:
    """Add a document, ask for a rebuild, ask again at once (expect 409), wait for it, then ask about the new text."""
    await asyncio.sleep(at_s)
    before = (await client.post("/api/ask", json={"question": PROBE})).json()
    (corpus / "kestrel-ferry.txt").write_text(NEW_DOC, encoding="utf-8")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    started = time.perf_counter()
    first = await client.post("/api/reindex", headers=auth)
    second = await client.post("/api/reindex", headers=auth)
    runs = None
    while time.perf_counter() - started < 120:
        state = (await client.get("/api/index")).json()
        if not state["rebuild"]["running"]:
            runs = state["rebuild"]["runs"]
            break
        await asyncio.sleep(0.2)
    after = (await client.post("/api/ask", json={"question": PROBE})).json()
    return {
        "reindex_status": first.status_code,
        "overlapping_reindex_status": second.status_code,
        "rebuild_s": round(time.perf_counter() - started, 2),
        "rebuild_runs": runs,
        "probe_source_before": (before.get("answer") or {}).get("source"),
        "probe_source_after": (after.get("answer") or {}).get("source"),
        "switched": (after.get("answer") or {}).get("source") == "kestrel-ferry.txt",
    }


async def soak(url: str, corpus: Path, clients: int, seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        ask, tally = Questions(), Tally()
        start = time.perf_counter()
        deadline = start + seconds
        loops = [
            client_loop(lambda: client.post("/api/ask", json={"question": ask()}), tally, deadline)
            for _ in range(clients)
        ]
        rebuild = rebuild_midway(client, corpus, at_s=seconds / 3)
        *_, swap = await asyncio.wait_for(asyncio.gather(*loops, rebuild), timeout=seconds + 180)
        tally.elapsed_s = time.perf_counter() - start
    return tally.summary() | {"swap": swap}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 1 <= args.clients <= 64):
        parser.error("--seconds must be in (0, 600] and --clients in [1, 64]")
    with (
        workspace(None) as (corpus, index),
        Server(corpus, index, index.parent / "serve.log", env=rag_env(RAG_ADMIN_TOKEN=TOKEN)) as server,
    ):
        meter = CpuMeter(os.getpid(), server.pid)
        result = asyncio.run(soak(server.url, corpus, args.clients, args.seconds))
        result["other_cpu_pct"] = meter.other_pct()
        result["server_peak_rss_mb"] = server.peak_rss_mb()
    result |= {"clients": args.clients, "max_requests": MAX_REQUESTS}
    result["passed"] = result["errors"] == 0 and result["swap"]["switched"] and result["swap"]["reindex_status"] == 202
    write_result("soak", result)
    s = result["swap"]
    print(
        f"{args.clients} clients, {result['seconds']:.0f} s: {result['rps']:.1f} req/s, p50 {result['p50_ms']:.1f} "
        f"p95 {result['p95_ms']:.1f} p99 {result['p99_ms']:.1f} ms, {result['errors']} failed; rebuild "
        f"{s['reindex_status']} (overlapping request: {s['overlapping_reindex_status']}) took {s['rebuild_s']} s; "
        f"answers switched to the new document: {s['switched']}"
    )


if __name__ == "__main__":
    main()
