#!/usr/bin/env python3
"""A short, bounded load test of `python -m ullme.server` on 127.0.0.1: for each concurrency, C asyncio
clients (httpx) send /v1/embeddings requests back to back for D seconds; reports requests/s, texts/s and
p50/p99 latency, and how many engine calls the server's batcher made.

    python3 bench/bench_server.py [--seconds 5] [--concurrency 1 8] [--texts-per-request 1] [--model PATH]

First times `Model.encode` of one query in-process (no HTTP) for the engine's share of the latency.
Writes bench/results/server-<date>.json (and prints a Markdown table for bench/README.md).
Needs fastapi, uvicorn and httpx (pip install "ullme[server]" httpx).
"""
import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bindings" / "python"))
from ullme.server import ServerProcess  # noqa: E402

QUERIES = ["how do lighthouses guide ships at night?", "what is the boiling point of water at altitude?",
           "recipe for sourdough bread with a rye starter", "when are income tax returns due?",
           "which planets have rings?", "how does a suspension bridge carry its load?"]


async def run_level(url, concurrency, seconds, per_request):
    latencies, errors = [], 0
    stop = time.perf_counter() + seconds

    async def worker(w):
        nonlocal errors
        k = 0
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            while time.perf_counter() < stop:
                texts = [f"{QUERIES[(w + k + j) % len(QUERIES)]} ({w}.{k}.{j})" for j in range(per_request)]
                t0 = time.perf_counter()
                r = await client.post("/v1/embeddings", json={"input": texts, "model": "bench"})
                dt = time.perf_counter() - t0
                if r.status_code == 200 and len(r.json()["data"]) == per_request:
                    latencies.append(dt)
                else:
                    errors += 1
                k += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - t0
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else None  # noqa: E731
    return {"concurrency": concurrency, "texts_per_request": per_request, "seconds": round(wall, 2),
            "requests": len(latencies), "errors": errors, "requests_per_s": round(len(latencies) / wall, 2),
            "texts_per_s": round(len(latencies) * per_request / wall, 2),
            "p50_ms": latencies and round(pct(0.50), 1), "p99_ms": latencies and round(pct(0.99), 1)}


def direct_baseline(model_path, seconds):
    """p50 of Model.encode of one query in this process (no HTTP): the engine's share of the latency."""
    import ullme
    m = ullme.Model(model_path) if model_path else ullme.Model()
    m.encode(QUERIES)
    lat, stop, k = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        m.encode(f"{QUERIES[k % len(QUERIES)]} (direct {k})")
        lat.append(time.perf_counter() - t0)
        k += 1
    m.close()
    lat.sort()
    return {"calls": len(lat), "p50_ms": round(lat[len(lat) // 2] * 1000, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--texts-per-request", type=int, default=1)
    ap.add_argument("--model", help="served model (default: ullme.Model()'s)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-baseline", action="store_true", help="skip the in-process Model.encode baseline")
    a = ap.parse_args()
    args = ["--model", a.model] if a.model else []
    rows = []
    baseline = None if a.no_baseline else direct_baseline(a.model, a.seconds)
    if baseline:
        print(f"in-process Model.encode, one query: p50 {baseline['p50_ms']} ms ({baseline['calls']} calls)",
              file=sys.stderr)
    with ServerProcess(args) as s:
        httpx.post(s.url + "/v1/embeddings", json={"input": QUERIES}, timeout=300).raise_for_status()  # warm-up
        for c in a.concurrency:
            before = httpx.get(s.url + "/health").json()["batching"]
            row = asyncio.run(run_level(s.url, c, a.seconds, a.texts_per_request))
            after = httpx.get(s.url + "/health").json()["batching"]
            row["engine_calls"] = after["engine_calls"] - before["engine_calls"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        name = httpx.get(s.url + "/health").json()["model"]
    date = time.strftime("%Y-%m-%d-%H%M", time.gmtime())
    result = {"date_utc": date, "model": name, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "load_average_after": os.getloadavg(), "direct_encode_one_query": baseline,
              "rows": rows}
    out = Path(a.out or REPO / "bench" / "results" / f"server-{date}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| clients | texts/request | requests/s | texts/s | p50 ms | p99 ms | engine calls / requests | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['texts_per_request']} | {r['requests_per_s']} | {r['texts_per_s']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['engine_calls']} / {r['requests']} | {r['errors']} |")
    if baseline:
        print(f"In-process `Model.encode` of one query (no HTTP): p50 {baseline['p50_ms']} ms.")
    print(f"({out.relative_to(REPO) if out.is_relative_to(REPO) else out}; load average after: "
          f"{', '.join(f'{x:.1f}' for x in result['load_average_after'])})")


if __name__ == "__main__":
    main()
