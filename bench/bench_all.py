#!/usr/bin/env python3
"""Every performance comparison in one command, one summary table.

    python3 bench/bench_all.py [--threads 2] [--skip scaling,grl] [--with-train]     (make bench-all)

Runs, one after another on this machine (run it when nothing else does):
  1. bench/peak_flops.c   the core's FP32 (AVX-512, AVX2) and BF16 peak, for the roofline;
  2. bench_embed.py       256 passages x 128 tokens: tokens/s, GFLOP/s, query latency, peak RSS, cosine to HF,
                          for libullme exact (quantized and dense weights) and bf16, transformers and llama-cpp-python;
  3. bench_scaling.py     sequence lengths 32-2048 and batch sizes 1-128 at 1 and 2 threads, PNG plot;
  4. bench_grl.py         one GRL step (CL + DPO + KL, GradCache) vs a PyTorch + PEFT baseline;
  5. bench_train.py       (--with-train) LoRA steps vs PyTorch + PEFT.
Each writes its JSON into bench/results/run-<timestamp>/; this script then writes summary.md there (date,
CPU model and flags, every table and the performance goals with met / not met) and prints it.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_embed as be  # noqa: E402

FLAGS = ["avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16", "avx512_vnni", "amx_bf16"]


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return [f for f in FLAGS if f in have]
    return []


def peak_flops(out):
    """Per-core GFLOP/s of bench/peak_flops.c, or {} when no C compiler is found."""
    cc = shutil.which("clang") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        print("peak: no C compiler; skipped")
        return {}
    exe = Path(tempfile.mkdtemp()) / "peak_flops"
    subprocess.run([cc, "-O2", str(HERE / "peak_flops.c"), "-o", str(exe)], check=True)
    text = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    (out / "peak.txt").write_text(text)
    print(text, end="")
    peaks = {}
    for key, pat in (("fp32_avx512", r"fp32 avx512 FMA: *([\d.]+)"), ("fp32_avx2", r"fp32 avx2 FMA: *([\d.]+)"),
                     ("bf16", r"bf16 dpbf16ps: *([\d.]+)")):
        m = re.search(pat, text)
        if m:
            peaks[key] = float(m.group(1))
    return peaks


def run(script, args, out):
    cmd = [sys.executable, str(HERE / script), *args, "--out", str(out)]
    print("\n$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd)
    if r.returncode != 0:
        print(f"{script} failed with exit status {r.returncode}", flush=True)
    return r.returncode == 0


def newest(out, prefix):
    files = sorted(out.glob(f"{prefix}-*.json"), key=lambda p: p.stat().st_mtime)
    return json.load(open(files[-1])) if files else None


def fmt(v, spec=".0f", none="-"):
    return none if v is None else format(v, spec)


def summary(out, threads, peaks, embed, scaling, grl, train):
    now = datetime.datetime.now()
    lines = [f"# libullme benchmarks, {now:%Y-%m-%d %H:%M}", "",
             f"CPU: {be.cpu_name()}, {os.cpu_count()} cores; flags: {' '.join(cpu_flags())}; "
             f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; Python {platform.python_version()}."]
    cores = os.cpu_count() or 1
    fp32_peak = bf16_peak = None
    if peaks:
        fp32_peak = max(peaks.get("fp32_avx512", 0), peaks.get("fp32_avx2", 0)) * min(threads, cores)
        bf16_peak = peaks.get("bf16", 0) * min(threads, cores) or None
        lines.append(f"Peak per core (bench/peak_flops.c): FP32 FMA {peaks.get('fp32_avx512', 0):.0f} (AVX-512) / "
                     f"{peaks.get('fp32_avx2', 0):.0f} (AVX2), BF16 VDPBF16PS {peaks.get('bf16', 0):.0f} GFLOP/s; "
                     f"at {threads} threads: FP32 {fp32_peak:.0f}, BF16 {fmt(bf16_peak)} GFLOP/s.")
    goals = []
    if embed:
        res = embed["results"]
        lines += ["", f"## Embedding: {embed['passages']} passages x ~{embed['tokens_per_passage']} tokens, "
                      f"{embed['threads']} threads, batch {embed['batch']}", "",
                  "| engine | tokens/s | GFLOP/s | % of peak | query latency ms | peak RSS MB | cosine to HF (min) | vs HF | vs llama.cpp |",
                  "|---|---|---|---|---|---|---|---|---|"]
        hf = res.get("hf", {}).get("tokens_per_s")
        lc = res.get("llamacpp", {}).get("tokens_per_s")
        for name, r in res.items():
            if "tokens_per_s" not in r:
                lines.append(f"| {name} | failed: {r.get('error', '?')} | | | | | | | |")
                continue
            gf = r.get("gflops")
            peak = bf16_peak if name.endswith("bf16") else fp32_peak
            cos = r.get("cosine_to_hf")
            lines.append(f"| {name} | {r['tokens_per_s']:.0f} | {fmt(gf)} | {fmt(gf / peak * 100 if gf and peak else None)} | "
                         f"{r['query_latency_ms']:.1f} | {fmt(r.get('peak_rss_mb'))} | "
                         f"{fmt(cos['mean'], '.5f') + ' (' + fmt(cos['min'], '.5f') + ')' if cos else '-'} | "
                         f"{fmt(r['tokens_per_s'] / hf if hf else None, '.2f')}x | {fmt(r['tokens_per_s'] / lc if lc else None, '.2f')}x |")
        if "ullme" in res and hf and lc and "tokens_per_s" in res["ullme"]:
            u = res["ullme"]
            goals.append(("exact: >= 2.0x transformers", u["tokens_per_s"] / hf >= 2.0, f"{u['tokens_per_s'] / hf:.2f}x"))
            goals.append(("exact: >= 4x llama.cpp", u["tokens_per_s"] / lc >= 4.0, f"{u['tokens_per_s'] / lc:.2f}x"))
            ql = res["llamacpp"]["query_latency_ms"]
            goals.append(("query latency <= 0.5x llama.cpp", u["query_latency_ms"] <= 0.5 * ql,
                          f"{u['query_latency_ms'] / ql:.2f}x ({u['query_latency_ms']:.1f} vs {ql:.1f} ms)"))
            if "peak_rss_mb" in u and u.get("rss_budget_mb"):
                goals.append(("peak RSS <= 1.3x (weights + activations)", u["peak_rss_mb"] <= 1.3 * u["rss_budget_mb"],
                              f"{u['peak_rss_mb'] / u['rss_budget_mb']:.2f}x ({u['peak_rss_mb']:.0f} of {u['rss_budget_mb']:.0f} MB)"))
        b = res.get("ullme-bf16", {})
        if hf and "tokens_per_s" in b:
            cos = b.get("cosine_to_hf") or {}
            goals.append((f"bf16 fast mode ({b.get('precision_path', '?')}): speed and cosine >= 0.999 to HF",
                          cos.get("min", 0) >= 0.999, f"{b['tokens_per_s'] / hf:.2f}x HF, min cosine {fmt(cos.get('min'), '.5f')}"))
        i8 = res.get("ullme-int8", {})
        if hf and lc and "tokens_per_s" in i8:
            cos, ql = i8.get("cosine_to_hf") or {}, res["llamacpp"]["query_latency_ms"]
            path = i8.get("precision_path", "?")
            goals.append((f"int8 ({path}): >= 2.5x transformers", i8["tokens_per_s"] / hf >= 2.5, f"{i8['tokens_per_s'] / hf:.2f}x"))
            goals.append((f"int8 ({path}): >= 8x llama.cpp", i8["tokens_per_s"] / lc >= 8.0, f"{i8['tokens_per_s'] / lc:.2f}x"))
            goals.append(("int8: query latency <= 0.25x llama.cpp", i8["query_latency_ms"] <= 0.25 * ql,
                          f"{i8['query_latency_ms'] / ql:.2f}x ({i8['query_latency_ms']:.1f} vs {ql:.1f} ms)"))
            goals.append(("int8: min cosine >= 0.999 to HF", cos.get("min", 0) >= 0.999, fmt(cos.get("min"), ".5f")))
    if scaling:
        rows = scaling["rows"]
        lengths = sorted({r["length"] for r in rows if r["sweep"] == "length"})
        lines += ["", "## Throughput (tokens/s) by sequence length", "",
                  "| engine | threads | " + " | ".join(f"L={L}" for L in lengths) + " |", "|---|---|" + "---|" * len(lengths)]
        for e, t in sorted({(r["engine"], r["threads"]) for r in rows if r["sweep"] == "length"}, key=lambda k: (k[1], k[0])):
            v = {r["length"]: r["tokens_per_s"] for r in rows if r["sweep"] == "length" and r["engine"] == e and r["threads"] == t}
            lines.append(f"| {e} | {t} | " + " | ".join(fmt(v.get(L)) for L in lengths) + " |")
        bs = sorted({r["batch"] for r in rows if r["sweep"] == "batch"})
        if bs:
            lines += ["", "## L = 128: tokens/s / latency of one batch (ms) by batch size", "",
                      "| engine | threads | " + " | ".join(f"B={b}" for b in bs) + " |", "|---|---|" + "---|" * len(bs)]
            for e, t in sorted({(r["engine"], r["threads"]) for r in rows if r["sweep"] == "batch"}, key=lambda k: (k[1], k[0])):
                v = {r["batch"]: r for r in rows if r["sweep"] == "batch" and r["engine"] == e and r["threads"] == t}
                lines.append(f"| {e} | {t} | " + " | ".join(
                    f"{v[b]['tokens_per_s']:.0f} / {v[b]['batch_ms']:.0f}" if b in v else "-" for b in bs) + " |")
        lines += ["", "Plot: scaling-*.png in this directory."]
    if grl:
        lines += ["", f"## GRL step (CL + DPO + KL, GradCache): batch {grl.get('batch')}, chunk {grl.get('chunk')}, "
                      f"{grl.get('threads')} threads, {grl.get('tokens_per_step', '?')} tokens/step", "",
                  "| engine | tokens/s | s/step | peak RSS MB |", "|---|---|---|---|"]
        eng = grl.get("results", {})
        for name, r in eng.items():
            if "tokens_per_s" in r:
                lines.append(f"| {name} | {r['tokens_per_s']:.1f} | {r['seconds_per_step']:.2f} | {fmt(r.get('peak_rss_mb'))} |")
        for ours in ("ullme", "ullme-dense", "ullme-quantized"):
            if "tokens_per_s" in eng.get(ours, {}) and "tokens_per_s" in eng.get("peft", {}):
                ratio = eng[ours]["tokens_per_s"] / eng["peft"]["tokens_per_s"]
                goals.append((f"GRL step >= 1.5x PyTorch + PEFT ({ours})", ratio >= 1.5, f"{ratio:.2f}x"))
    if train:
        lines += ["", "## LoRA training steps vs PyTorch + PEFT: see train-*.json (bench/README.md explains the columns)"]
    if goals:
        lines += ["", "## Performance goals", "", "| goal | met | measured |", "|---|---|---|"]
        lines += [f"| {g} | {'yes' if ok else 'no'} | {m} |" for g, ok, m in goals]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma list of: peak,embed,scaling,grl")
    ap.add_argument("--with-train", action="store_true", help="also run bench_train.py (LoRA steps vs PEFT)")
    ap.add_argument("--scaling-args", default="--budget 2048 --batch-texts 64",
                    help="extra arguments for bench_scaling.py (default: a ~25-minute sweep)")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    out = HERE / "results" / f"run-{datetime.datetime.now():%Y-%m-%d-%H%M}"
    out.mkdir(parents=True, exist_ok=True)
    t = str(a.threads)
    peaks = {} if "peak" in skip else peak_flops(out)
    if "embed" not in skip:
        run("bench_embed.py", ["--threads", t, "--engines", "ullme,ullme-dense,ullme-bf16,ullme-int8,hf,llamacpp"], out)
    if "scaling" not in skip:
        run("bench_scaling.py", ["--threads", f"1,{t}" if a.threads > 1 else t,
                                 "--engines", "ullme,ullme-bf16,hf,llamacpp", *a.scaling_args.split()], out)
    if "grl" not in skip:
        run("bench_grl.py", ["--threads", t, "--steps", "2", "--engines", "ullme,ullme-dense,ullme-quantized,peft"], out)
    if a.with_train:
        run("bench_train.py", ["--threads", t], out)
    text = summary(out, a.threads, peaks, newest(out, "embed"), newest(out, "scaling"), newest(out, "grl"),
                   newest(out, "train") if a.with_train else None)
    print("\n" + text)
    print(f"wrote {out}/summary.md")


if __name__ == "__main__":
    main()
