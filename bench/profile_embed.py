#!/usr/bin/env python3
"""Where an embedding's time goes, per precision mode: `perf record` of one process embedding SmolLM2 passages
(32 x ~128 tokens) or one 16-token query, one thread, samples grouped by what the function does.

    python3 bench/profile_embed.py [--modes exact,bf16,int8] [--repeat 3]   # needs perf (Debian linux-perf)

Prints a Markdown table (share of samples per group) for bench/README.md. Shares, not seconds: they hold on a
loaded machine too (each process's own samples).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.path.expanduser("~/.cache/ullme/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
# Symbol patterns -> group, first match wins.
GROUPS = [
    ("int8 outliers (float32 part)", r"outlier|split_row|sum_squares"),
    ("int8 GEMM", r"zmm_\dx\d|avx2_\d_\d+_\d|tile_i8_|cullme_gemm_i8"),
    ("activation quantisation (int8)", r"quantize_group|cullme_i8_quantize"),
    ("bf16 GEMM", r"bf16|^tile$"),  # gemm_bf16.c's kernel is the static `tile`
    ("fp32 GEMM (weights)", r"tile_avx512|tile_avx2|gemm_run|gemm_drive|pack_x"),
    ("dequantisation into GEMM blocks", r"group_avx512|group_avx2|group_generic|fill_block|dequant"),
    ("attention (OpenBLAS per head, softmax)", r"sgemm|PRESCOTT|HASWELL|SKYLAKEX|expf|softmax|attention"),
    ("MLP activation", r"activation|swiglu"),
    ("norms", r"norm"),
    ("residual adds, RoPE, pooling", r"residual|rope|Rope|pool"),
    ("memory copies", r"memmove|memcpy|memset"),
]

SCRIPT = """
import os, sys, ullme
words = open("/usr/share/common-licenses/GPL-3").read().split()
texts = [" ".join(words[i * 90:(i + 1) * 90]) for i in range(32)] if sys.argv[3] == "batch" else ["how do I list all the files in a directory by size"]
m = ullme.Model(sys.argv[1], precision=sys.argv[2], adapter=False, max_length=128, threads=1)
for _ in range(int(sys.argv[4]) * (1 if sys.argv[3] == "batch" else 200)): m.encode(texts)
"""


def profile(mode, workload, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/perf.data"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings/python"), ULLME_LIB=str(ROOT / "build/lib/libullme.so"))
        subprocess.run(["perf", "record", "-q", "-o", data, sys.executable, "-c", SCRIPT, str(MODEL), mode, workload,
                        str(repeat)], check=True, env=env, stderr=subprocess.DEVNULL)
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio"],
                             capture_output=True, text=True, check=True).stdout
    shares = {g: 0.0 for g, _ in GROUPS}
    shares["Python, loading, other"] = 0.0
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        group = next((g for g, pat in GROUPS if re.search(pat, sym.split()[0] if sym.split() else sym)), None)
        if group is None or ("python" in dso and group == "memory copies"):
            group = "Python, loading, other"
        shares[group] += pct
    return shares


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="exact,bf16,int8")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    cols = [(mode, w) for w in ("batch", "query") for mode in a.modes.split(",")]
    results = {c: profile(*c, a.repeat) for c in cols}
    print("| share of samples | " + " | ".join(f"{m}, {'32 x 128 tokens' if w == 'batch' else '16-token query'}" for m, w in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for g in list(results[cols[0]]):
        print(f"| {g} | " + " | ".join(f"{results[c][g]:.1f} %" for c in cols) + " |")


if __name__ == "__main__":
    main()
