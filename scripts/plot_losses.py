#!/usr/bin/env python3
"""Plots a GRL training log (JSON lines from `ullme train`) into a PNG: total, contrastive, generative, KL."""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(log_path, png_path):
    rows = [json.loads(line) for line in open(log_path) if line.strip()]
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label in (("loss", "total"), ("cl", "contrastive"), ("gen", "generative"), ("kl", "KL")):
        # null: a non-finite value (a step that nonfinite_policy skipped or stopped at): a gap in the line
        ax.plot(steps, [float("nan") if r[key] is None else r[key] for r in rows], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
