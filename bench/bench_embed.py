#!/usr/bin/env python3
"""Embedding throughput of libullme vs Hugging Face transformers vs llama-cpp-python, same run.

    python3 bench/bench_embed.py [--threads 2] [--n 256] [--tokens 128] [--engines ullme,ullme-bf16,ullme-int8,hf,llamacpp]

256 passages of ~128 tokens of real English text (paragraphs of /usr/share/common-licenses/*, files
in sorted order, then /usr/share/doc/*/copyright; paragraphs of >= 60 words, deduplicated, cut to
--tokens tokens with the model's tokenizer) are embedded with SmolLM2-135M-Instruct.Q4_1.gguf by
  ullme     the Python binding (bidirectional attention, mean pooling, batch 32), default weights
            (quantized: the Q4_1 values as int8 panels, dequantised block by block inside each product)
  ullme-dense  the same with Model(weights="dense") (float32 weights packed at load; bit-identical results)
  ullme-bf16  the same with Model(precision="bf16") (AVX512_BF16 products; its path is recorded, and
            on a CPU without AVX512_BF16 it says it ran the exact kernels)
  ullme-int8  the same with Model(precision="int8") (the Q4_1 integers times int8 activations: VNNI or AVX2;
            its kernel path is recorded)
  hf        transformers, the same GGUF dequantised to float32, torch.set_num_threads(N), batch 32,
            right padding, 4-D bidirectional mask, mean over real tokens
  llamacpp  llama-cpp-python, Llama(embedding=True, pooling_type=1 (mean), n_threads=N, n_batch=512);
            note llama.cpp runs llama models with causal attention even for embeddings
all with the same thread count, each engine in its own child process (its peak RSS comes from wait4). Prints
tokens/s (real tokens, no padding), GFLOP/s (flops_per_token below), peak RSS and ratios, the median latency
of one 17-token query, the mean and minimum per-vector cosine between engines (ullme-bf16~hf and ullme-int8~hf are
the fast modes' accuracy figures), and writes bench/results/embed-<date>.json.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))

QUERY_BASE = ("What did lighthouse keepers do during long winter nights on remote islands far from the "
              "coast and harbours?")


def default_model():
    cache = Path(os.environ.get("ULLME_CACHE") or Path.home() / ".cache" / "ullme")
    return cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_tokenizer(model):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)


def passages(tok, n, n_tokens):
    files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    seen, out = set(), []
    for f in files:
        if os.path.isdir(f):
            continue
        try:
            text = Path(f).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if len(para.split()) < 60 or para in seen:
                continue
            seen.add(para)
            ids = tok(para, add_special_tokens=False)["input_ids"][:n_tokens]
            if len(ids) < n_tokens:
                continue
            out.append(tok.decode(ids))
            if len(out) == n:
                return out
    raise SystemExit(f"only {len(out)} passages of {n_tokens} tokens found")


def query_text(tok, n_tokens=17):
    ids = tok(QUERY_BASE, add_special_tokens=False)["input_ids"][:n_tokens]
    return tok.decode(ids)


def latency(fn, reps=10):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_ullme(model, texts, query, threads, batch, precision="exact", weights=None):
    import ullme
    baseline = rss_mb()
    m = ullme.Model(str(model), threads=threads, batch_size=batch, precision=precision, weights=weights)
    loaded = rss_mb()
    m.encode(texts[:batch])  # warm-up
    t = time.perf_counter()
    e = m.encode(texts, batch_size=batch)
    dt = time.perf_counter() - t
    ntok = m.last_stats["n_tokens"]
    lat = latency(lambda: m.encode(query))
    qtok = m.last_stats["n_tokens"]
    info = {"library_version": ullme.library_version(), "library_path": ullme.library_path(),
            "precision": precision, "precision_path": m.precision_path,
            "rss_baseline_mb": baseline, "rss_after_load_mb": loaded}
    m.close()
    return dict(tokens=ntok, seconds=dt, tokens_per_s=ntok / dt, query_tokens=qtok, query_latency_ms=lat, **info), e


def bench_hf(model, texts, query, threads, batch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import transformers
    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    lm = AutoModelForCausalLM.from_pretrained(str(model.parent), gguf_file=model.name, dtype=torch.float32).eval()
    base = lm.model

    def enc(batch_texts):
        b = tok(batch_texts, padding=True, return_tensors="pt")
        attn = b["attention_mask"]
        B, L = attn.shape
        neg = torch.finfo(torch.float32).min
        mask = torch.where(attn.bool(), 0.0, neg)[:, None, None, :].expand(B, 1, L, L)
        with torch.inference_mode():
            h = base(input_ids=b["input_ids"], attention_mask=mask).last_hidden_state
        m = attn[..., None].float()
        pooled = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy(), int(attn.sum())

    enc(texts[:batch])
    t = time.perf_counter()
    outs, ntok = [], 0
    for i in range(0, len(texts), batch):
        e, k = enc(texts[i:i + batch])
        outs.append(e)
        ntok += k
    dt = time.perf_counter() - t
    lat = latency(lambda: enc([query]))
    qtok = enc([query])[1]
    return dict(tokens=ntok, seconds=dt, tokens_per_s=ntok / dt, query_tokens=qtok, query_latency_ms=lat,
                torch=torch.__version__, transformers=transformers.__version__), np.concatenate(outs)


def bench_llamacpp(model, texts, query, threads, batch):
    import llama_cpp
    from llama_cpp import Llama
    llm = Llama(model_path=str(model), embedding=True, pooling_type=1, n_threads=threads, n_threads_batch=threads,
                n_batch=512, n_ubatch=512, n_ctx=4096, verbose=False)
    ntok = sum(len(llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)) for t in texts)
    llm.embed(texts[:batch])
    t = time.perf_counter()
    outs = []
    for i in range(0, len(texts), batch):
        outs.append(np.asarray(llm.embed(texts[i:i + batch], normalize=True), dtype=np.float32))
    dt = time.perf_counter() - t
    lat = latency(lambda: llm.embed(query))
    qtok = len(llm.tokenize(query.encode("utf-8"), add_bos=True, special=False))
    return dict(tokens=ntok, seconds=dt, tokens_per_s=ntok / dt, query_tokens=qtok, query_latency_ms=lat,
                llama_cpp_python=llama_cpp.__version__), np.concatenate(outs)


RUNNERS = {"ullme": bench_ullme, "ullme-dense": partial(bench_ullme, weights="dense"),
           "ullme-bf16": partial(bench_ullme, precision="bf16"), "ullme-int8": partial(bench_ullme, precision="int8"),
           "hf": bench_hf,
           "llamacpp": bench_llamacpp}


def run_worker(name, args):
    """Runs one engine in a child process (its own peak RSS, from wait4); returns (result, embeddings or None)."""
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        cmd = [sys.executable, __file__, "--worker", name, "--worker-dir", tmp, "--threads", str(args.threads),
               "--n", str(args.n), "--tokens", str(args.tokens), "--batch", str(args.batch), "--model", str(args.model)]
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        out = Path(tmp)
        if status != 0 or not (out / "result.json").exists():
            err = (out / "error.txt").read_text() if (out / "error.txt").exists() else f"worker exit status {status}"
            return {"error": err}, None
        r = json.load(open(out / "result.json"))
        r["peak_rss_mb"] = usage.ru_maxrss / 1024
        return r, np.load(out / "embeddings.npy")


def worker(args):
    out = Path(args.worker_dir)
    try:
        tok = load_tokenizer(args.model)
        texts = passages(tok, args.n, args.tokens)
        r, e = RUNNERS[args.worker](args.model, texts, query_text(tok), args.threads, args.batch)
    except Exception as ex:  # the parent reports which engine failed and why
        (out / "error.txt").write_text(f"{type(ex).__name__}: {ex}")
        raise
    np.save(out / "embeddings.npy", np.asarray(e, dtype=np.float32))
    json.dump(r, open(out / "result.json", "w"))


def model_dims(model):
    """Layer sizes of the model, from its GGUF metadata through the binding (weights stay mapped)."""
    import ullme
    m = ullme.Model(str(model), weights="stored", threads=1)
    info = m.info
    m.close()
    return info


def flops_per_token(d, length):
    """Multiply-adds x 2 per token: the linear layers (Q, K, V, O, gate, up, down) and bidirectional attention
    (scores and weighted values over `length` keys). SmolLM2 at 128 tokens: 0.221 GFLOP."""
    C, I, L = d["hidden_size"], d["intermediate_size"], d["n_layers"]
    hd = C // d["n_heads"]
    kv = d["n_kv_heads"] * hd
    linear = C * (C + 2 * kv) + C * C + 3 * C * I
    return L * (2 * linear + 4 * length * d["n_heads"] * hd)


def activation_bytes(d, tokens):
    """float32 activations of one batch: the residual stream, norm outputs, q|k|v, attention output, up, act."""
    C, I = d["hidden_size"], d["intermediate_size"]
    kv = d["n_kv_heads"] * (C // d["n_heads"])
    return 4 * tokens * (4 * C + (C + 2 * kv) + 2 * I + I)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine():
    """What a result depends on beyond the CPU's name: its SIMD flags, OPENBLAS_CORETYPE (recorded, never set)
    and the kernel set the system OpenBLAS (libullme's attention and LoRA products) picked."""
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    try:
        import ctypes
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_get_corename.restype = ctypes.c_char_p
        core = blas.openblas_get_corename().decode()
    except (OSError, AttributeError):
        core = None
    return {"cpu": cpu_name(), "cpu_flags": [f for f in wanted if f in flags],
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"), "openblas_core": core}


def main():
    ap = argparse.ArgumentParser(description="libullme vs transformers vs llama-cpp-python embedding throughput")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=256, help="passages")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per passage")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--engines", default="ullme,ullme-bf16,ullme-int8,hf,llamacpp")
    ap.add_argument("--model", type=Path, default=default_model())
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if not args.model.is_file():
        raise SystemExit(f"{args.model} missing: run scripts/fetch_models.sh")
    tok = load_tokenizer(args.model)
    texts = passages(tok, args.n, args.tokens)
    query = query_text(tok)
    print(f"{len(texts)} passages x ~{args.tokens} tokens, {args.threads} threads, batch {args.batch}, "
          f"query {len(tok(query)['input_ids'])} tokens; {cpu_name()}", flush=True)
    results, embs = {}, {}
    dims = model_dims(args.model)
    for name in args.engines.split(","):
        r, e = run_worker(name, args)
        results[name] = r
        if e is None:
            print(f"  {name:10s} FAILED: {r['error']}", flush=True)
            continue
        embs[name] = e
        mean_len = r["tokens"] / len(texts)
        r["gflops"] = r["tokens_per_s"] * flops_per_token(dims, mean_len) / 1e9
        if "rss_after_load_mb" in r:
            # What an embedding run must hold: the interpreter, the weights as loaded (packed or mapped) and
            # the activations of one batch (the decoder's per-layer buffers, see LayerBuffers in Decoder.swift).
            r["activations_mb"] = activation_bytes(dims, mean_len * args.batch) / 2**20
            r["rss_budget_mb"] = r["rss_after_load_mb"] + r["activations_mb"]
        print(f"  {name:10s} {r['tokens_per_s']:9.1f} tokens/s  {r['gflops']:6.1f} GFLOP/s  ({r['tokens']} tokens in "
              f"{r['seconds']:.2f} s)   query latency {r['query_latency_ms']:.1f} ms ({r['query_tokens']} tokens)   "
              f"peak RSS {r['peak_rss_mb']:.0f} MB" + (f"   path {r['precision_path']}" if "precision_path" in r else ""),
              flush=True)
    for name, e in embs.items():
        if name != "hf" and "hf" in embs and e.shape == embs["hf"].shape:
            cos = np.sum(e * embs["hf"], axis=1)
            results[name]["cosine_to_hf"] = {"mean": float(np.mean(cos)), "min": float(np.min(cos))}
    ratios = {}
    for ours in ("ullme", "ullme-dense", "ullme-bf16", "ullme-int8"):
        if "tokens_per_s" not in results.get(ours, {}):
            continue
        for other in ("ullme", "hf", "llamacpp"):
            if other != ours and "tokens_per_s" in results.get(other, {}):
                ratios[f"{ours}/{other} throughput"] = results[ours]["tokens_per_s"] / results[other]["tokens_per_s"]
                ratios[f"{other}/{ours} query latency"] = results[other]["query_latency_ms"] / results[ours]["query_latency_ms"]
    agreement = {}
    for a, b in (("ullme", "hf"), ("ullme-dense", "ullme"), ("ullme-bf16", "hf"), ("ullme-bf16", "ullme"), ("ullme-int8", "hf"),
                 ("ullme-int8", "ullme"), ("ullme", "llamacpp"), ("hf", "llamacpp")):
        if a in embs and b in embs and embs[a].shape == embs[b].shape:
            cos = np.sum(embs[a] * embs[b], axis=1)
            agreement[f"{a}~{b} mean cosine"] = float(np.mean(cos))
            agreement[f"{a}~{b} min cosine"] = float(np.min(cos))
    for k, v in {**ratios, **agreement}.items():
        print(f"  {k}: {v:.6f}" if "cosine" in k else f"  {k}: {v:.3f}")
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"embed-{date}.json"
    json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"), **machine(),
               "nproc": os.cpu_count(), "threads": args.threads, "passages": len(texts), "tokens_per_passage": args.tokens,
               "batch": args.batch, "model": args.model.name, "query": query, "results": results, "ratios": ratios,
               "agreement": agreement, "python": platform.python_version()}, open(path, "w"), indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
