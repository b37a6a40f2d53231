#!/usr/bin/env python3
"""Checks a GRL run's JSONL log (ullme train): every loss term logged and finite, and the mean contrastive loss
of the last 20 steps at most `--ratio` (0.8) of the first 20 steps'. Prints the figures.
Usage: scripts/check_grl_demo.py build/runs/grl-wordnet-demo/log.jsonl (make grl-demo)
       scripts/check_grl_demo.py docs/results/grl-wordnet-demo/log.jsonl (the committed record)"""
import argparse
import json
import math
import statistics
import sys

ap = argparse.ArgumentParser()
ap.add_argument("log")
ap.add_argument("--ratio", type=float, default=0.8)
a = ap.parse_args()
rows = {}
for line in open(a.log):
    r = json.loads(line)
    rows[r["step"]] = r          # a resumed run re-logs the steps after its checkpoint: keep the last
rows = [rows[s] for s in sorted(rows)]
if len(rows) < 40:
    sys.exit(f"{a.log}: {len(rows)} steps, need at least 40")
for r in rows:
    for k in ("loss", "cl", "gen", "kl", "lr", "grad_norm"):
        if k not in r or not math.isfinite(r[k]):
            sys.exit(f"step {r['step']}: {k} missing or not finite")
first = statistics.mean(r["cl"] for r in rows[:20])
last = statistics.mean(r["cl"] for r in rows[-20:])
print(f"GRL run: {len(rows)} steps; mean contrastive loss first 20 = {first:.4f}, last 20 = {last:.4f}, "
      f"ratio {last / first:.3f} (must be <= {a.ratio}); median {statistics.median(r['seconds'] for r in rows):.1f} s/step")
sys.exit(0 if last <= a.ratio * first else 1)
