#!/usr/bin/env python3
"""Embedding throughput of libullme vs Hugging Face transformers vs llama-cpp-python, same run.

    python3 bench/bench_embed.py [--threads 2] [--n 256] [--tokens 128] [--engines ullme,ullme-bf16,hf,llamacpp]

256 passages of ~128 tokens of real English text (paragraphs of /usr/share/common-licenses/*, files
in sorted order, then /usr/share/doc/*/copyright; paragraphs of >= 60 words, deduplicated, cut to
--tokens tokens with the model's tokenizer) are embedded with SmolLM2-135M-Instruct.Q4_1.gguf by
  ullme     the Python binding (bidirectional attention, mean pooling, batch 32)
  ullme-bf16  the same with Model(precision="bf16") (AVX512_BF16 products; its path is recorded, and
            on a CPU without AVX512_BF16 it says it ran the exact kernels)
  hf        transformers, the same GGUF dequantised to float32, torch.set_num_threads(N), batch 32,
            right padding, 4-D bidirectional mask, mean over real tokens
  llamacpp  llama-cpp-python, Llama(embedding=True, pooling_type=1 (mean), n_threads=N, n_batch=512);
            note llama.cpp runs llama models with causal attention even for embeddings
all with the same thread count. Prints tokens/s (real tokens, no padding) and ratios, the median latency
of one 17-token query, the mean and minimum per-vector cosine between engines (ullme-bf16~hf is issue 8's
accuracy figure), and writes bench/results/embed-<date>.json.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import sys
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


def bench_ullme(model, texts, query, threads, batch, precision="exact"):
    import ullme
    m = ullme.Model(str(model), threads=threads, batch_size=batch, precision=precision)
    m.encode(texts[:batch])  # warm-up
    t = time.perf_counter()
    e = m.encode(texts, batch_size=batch)
    dt = time.perf_counter() - t
    ntok = m.last_stats["n_tokens"]
    lat = latency(lambda: m.encode(query))
    qtok = m.last_stats["n_tokens"]
    info = {"library_version": ullme.library_version(), "library_path": ullme.library_path(),
            "precision": precision, "precision_path": m.precision_path}
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


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description="libullme vs transformers vs llama-cpp-python embedding throughput")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=256, help="passages")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per passage")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--engines", default="ullme,ullme-bf16,hf,llamacpp")
    ap.add_argument("--model", type=Path, default=default_model())
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"{args.model} missing: run scripts/fetch_models.sh")
    tok = load_tokenizer(args.model)
    texts = passages(tok, args.n, args.tokens)
    query = query_text(tok)
    print(f"{len(texts)} passages x ~{args.tokens} tokens, {args.threads} threads, batch {args.batch}, "
          f"query {len(tok(query)['input_ids'])} tokens; {cpu_name()}", flush=True)
    runners = {"ullme": bench_ullme, "ullme-bf16": partial(bench_ullme, precision="bf16"), "hf": bench_hf,
               "llamacpp": bench_llamacpp}
    results, embs = {}, {}
    for name in args.engines.split(","):
        try:
            r, e = runners[name](args.model, texts, query, args.threads, args.batch)
            results[name], embs[name] = r, e
            print(f"  {name:10s} {r['tokens_per_s']:9.1f} tokens/s  ({r['tokens']} tokens in {r['seconds']:.2f} s)"
                  f"   query latency {r['query_latency_ms']:.1f} ms ({r['query_tokens']} tokens)"
                  + (f"   path {r['precision_path']}" if "precision_path" in r else ""), flush=True)
        except Exception as ex:  # keep going: report which engine failed and why
            results[name] = {"error": f"{type(ex).__name__}: {ex}"}
            print(f"  {name:9s} FAILED: {type(ex).__name__}: {ex}", flush=True)
    ratios = {}
    for ours in ("ullme", "ullme-bf16"):
        if "tokens_per_s" not in results.get(ours, {}):
            continue
        for other in ("ullme", "hf", "llamacpp"):
            if other != ours and "tokens_per_s" in results.get(other, {}):
                ratios[f"{ours}/{other} throughput"] = results[ours]["tokens_per_s"] / results[other]["tokens_per_s"]
                ratios[f"{other}/{ours} query latency"] = results[other]["query_latency_ms"] / results[ours]["query_latency_ms"]
    agreement = {}
    for a, b in (("ullme", "hf"), ("ullme-bf16", "hf"), ("ullme-bf16", "ullme"), ("ullme", "llamacpp"), ("hf", "llamacpp")):
        if a in embs and b in embs and embs[a].shape == embs[b].shape:
            cos = np.sum(embs[a] * embs[b], axis=1)
            agreement[f"{a}~{b} mean cosine"] = float(np.mean(cos))
            agreement[f"{a}~{b} min cosine"] = float(np.min(cos))
    for k, v in {**ratios, **agreement}.items():
        print(f"  {k}: {v:.6f}" if "cosine" in k else f"  {k}: {v:.3f}")
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"embed-{date}.json"
    json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
               "nproc": os.cpu_count(), "threads": args.threads, "passages": len(texts), "tokens_per_passage": args.tokens,
               "batch": args.batch, "model": args.model.name, "query": query, "results": results, "ratios": ratios,
               "agreement": agreement, "python": platform.python_version()}, open(path, "w"), indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
