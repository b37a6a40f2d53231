#!/usr/bin/env python3
"""Dense vs stored vs quantized base weights in libullme: memory and inference speed, same run.

    python3 bench/bench_storage.py [--threads 2] [--n 64] [--tokens 128]

For each storage (`dense`: dequantised to float32 and packed at load; `stored`: the GGUF's Q4_1 rows kept,
dequantised panel by panel inside every product; `quantized` (the default): the Q4_1 values re-laid out at
load as int8 panels with group scales, dequantised block by block inside every product) a fresh process
loads SmolLM2-135M-Instruct.Q4_1.gguf,
embeds --n passages of --tokens tokens (batch 32, as bench_embed.py) and one 17-token query, and reports
load seconds, RSS after load, peak RSS, tokens/s and the query latency. The embeddings must be identical
(bit for bit) between the three. Writes bench/results/storage-<date>.json.
"""
import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "bench"))


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def worker(args):
    import numpy as np
    import ullme
    from bench_embed import latency
    job = json.load(open(args.worker))
    t = time.perf_counter()
    m = ullme.Model(job["model"], threads=job["threads"], weights=job["weights"])
    load = time.perf_counter() - t
    after_load = rss_mb()
    m.encode(job["texts"][:32])
    t = time.perf_counter()
    e = m.encode(job["texts"], batch_size=32)
    dt = time.perf_counter() - t
    ntok = m.last_stats["n_tokens"]
    lat = latency(lambda: m.encode(job["query"]))
    np.save(job["out"], e)
    print("RESULT " + json.dumps(dict(load_seconds=load, rss_after_load_mb=after_load, tokens=ntok, seconds=dt,
                                      tokens_per_s=ntok / dt, query_latency_ms=lat,
                                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    import numpy as np
    from bench_embed import default_model, load_tokenizer, passages, query_text, cpu_name
    model = default_model()
    tok = load_tokenizer(model)
    texts, query = passages(tok, args.n, args.tokens), query_text(tok)
    results, embs = {}, {}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for weights in ("dense", "stored", "quantized"):
        job = tmp / f"bench_storage_{os.getpid()}_{weights}.json"
        out = tmp / f"bench_storage_{os.getpid()}_{weights}.npy"
        json.dump(dict(model=str(model), threads=args.threads, weights=weights, texts=texts, query=query, out=str(out)),
                  open(job, "w"))
        p = subprocess.run([sys.executable, __file__, "--worker", str(job)], capture_output=True, text=True)
        line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
        if p.returncode != 0 or not line:
            raise SystemExit(f"{weights}: {p.stderr.strip()[-2000:]}")
        results[weights] = json.loads(line[-1][7:])
        embs[weights] = np.load(out)
        job.unlink(); out.unlink()
        r = results[weights]
        print(f"  {weights:9s} load {r['load_seconds']:5.2f} s  RSS after load {r['rss_after_load_mb']:6.0f} MB  "
              f"peak {r['peak_rss_mb']:6.0f} MB  {r['tokens_per_s']:7.1f} tokens/s  query {r['query_latency_ms']:.1f} ms",
              flush=True)
    identical = all(np.array_equal(embs["dense"], embs[w]) for w in ("stored", "quantized"))
    print(f"  embeddings bit-identical: {identical}")
    now = datetime.datetime.now()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"storage-{now.strftime('%Y-%m-%d')}.json"
    json.dump({"date": now.isoformat(timespec="seconds"), "cpu": cpu_name(), "threads": args.threads,
               "passages": len(texts), "tokens_per_passage": args.tokens, "model": model.name, "results": results,
               "identical": identical, "load_average_at_end": os.getloadavg()}, open(path, "w"), indent=2)
    print(f"wrote {path}")
    if not identical:
        raise SystemExit("the storages' embeddings differ")


if __name__ == "__main__":
    main()
