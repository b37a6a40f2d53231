#!/usr/bin/env python3
"""Scaling of embedding throughput and latency with sequence length, batch size and threads:
libullme (exact, and bf16 as ullme-bf16) vs Hugging Face transformers vs llama-cpp-python, same texts, same run.

    python3 bench/bench_scaling.py [--threads 1,2] [--lengths 32,64,128,256,512,1024,2048]
                                   [--batches 1,8,32,128] [--budget 4096]
                                   [--engines ullme,ullme-bf16,hf,llamacpp]

Sequence sweep: texts of exactly L tokens (a stream of real English text, the same source as
bench_embed.py, cut into L-token pieces), about --budget tokens per point, batch min(32, 8192 / L).
Batch sweep: --batch-texts (128) texts of 128 tokens at each batch size. Each point reports tokens/s and the latency
of one batch (median of the timed batches); llama.cpp holds n_ctx = max(L) + 64 and n_batch = 2048
(its whole context per ubatch, so it runs long texts in one pass). At every length the embeddings of the
first batch's first 8 texts give the min cosine of ullme and ullme-bf16 to transformers. Writes
bench/results/scaling-<date>.json and bench/results/scaling-<date>.png (throughput vs sequence length).
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_embed as be  # noqa: E402  (shared model/tokenizer/corpus helpers)


def token_stream(tok, need):
    """At least `need` token ids of real English text (common licences, then copyright files)."""
    ids = []
    files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    for f in files:
        if os.path.isdir(f):
            continue
        try:
            text = " ".join(Path(f).read_text(encoding="utf-8", errors="replace").split())
        except OSError:
            continue
        ids += tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= need:
            return ids
    raise SystemExit(f"only {len(ids)} tokens of text found")


def texts_of(tok, stream, length, n):
    """n texts of `length` tokens each (decoded pieces of the stream; re-tokenising may shift a token)."""
    return [tok.decode(stream[i * length:(i + 1) * length]) for i in range(n)]


class Engine:
    """One loaded model per engine and thread count; embed(texts, batch) -> (tokens, seconds, batch ms)."""

    def __init__(self, name, model, threads, max_len):
        self.name = name
        if name in ("ullme", "ullme-bf16"):
            import ullme
            self.m = ullme.Model(str(model), threads=threads, max_length=max_len + 8,
                                 precision="bf16" if name == "ullme-bf16" else "exact")
            self.path = self.m.precision_path
        elif name == "hf":
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            torch.set_num_threads(threads)
            self.torch = torch
            self.tok = AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)
            if self.tok.pad_token_id is None:
                self.tok.pad_token = self.tok.eos_token
            self.base = AutoModelForCausalLM.from_pretrained(str(model.parent), gguf_file=model.name,
                                                             dtype=torch.float32).eval().model
        elif name == "llamacpp":
            from llama_cpp import Llama
            self.m = Llama(model_path=str(model), embedding=True, pooling_type=1, n_threads=threads,
                           n_threads_batch=threads, n_ctx=max_len + 64, n_batch=2048, n_ubatch=2048, verbose=False)
        else:
            raise SystemExit(f"unknown engine {name}")

    def _one_batch(self, batch, want=False):
        if self.name in ("ullme", "ullme-bf16"):
            e = self.m.encode(batch, batch_size=len(batch))
            return (self.m.last_stats["n_tokens"], e) if want else self.m.last_stats["n_tokens"]
        if self.name == "hf":
            torch = self.torch
            b = self.tok(batch, padding=True, return_tensors="pt")
            attn = b["attention_mask"]
            B, L = attn.shape
            mask = torch.where(attn.bool(), 0.0, torch.finfo(torch.float32).min)[:, None, None, :].expand(B, 1, L, L)
            with torch.inference_mode():
                h = self.base(input_ids=b["input_ids"], attention_mask=mask).last_hidden_state
                m = attn[..., None].float()
                e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
            return (int(attn.sum()), e.numpy()) if want else int(attn.sum())
        self.m.embed(batch, normalize=True)
        n = sum(len(self.m.tokenize(t.encode("utf-8"), add_bos=True, special=False)) for t in batch)
        return (n, None) if want else n  # llama.cpp's vectors are causal: not compared

    def run(self, texts, batch):
        self._one_batch(texts[:batch])  # warm-up
        ntok, times = 0, []
        t0 = time.perf_counter()
        for i in range(0, len(texts), batch):
            t = time.perf_counter()
            if i == 0:  # keep the first batch's embeddings for the agreement check
                n, self.first = self._one_batch(texts[:batch], want=True)
            else:
                n = self._one_batch(texts[i:i + batch])
            ntok += n
            times.append(time.perf_counter() - t)
        return ntok, time.perf_counter() - t0, statistics.median(times) * 1e3

    def close(self):
        if self.name in ("ullme", "ullme-bf16", "llamacpp"):
            self.m.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--lengths", default="32,64,128,256,512,1024,2048")
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--budget", type=int, default=4096, help="tokens per sequence-sweep point")
    ap.add_argument("--batch-texts", type=int, default=128, help="texts of 128 tokens per batch-sweep point")
    ap.add_argument("--engines", default="ullme,ullme-bf16,hf,llamacpp")
    ap.add_argument("--model", type=Path, default=be.default_model())
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args()
    threads = [int(x) for x in a.threads.split(",")]
    lengths = [int(x) for x in a.lengths.split(",")]
    batches = [int(x) for x in a.batches.split(",") if x]
    tok = be.load_tokenizer(a.model)
    stream = token_stream(tok, max(max(lengths) * max(2, a.budget // max(lengths) + 1), 128 * 129, a.budget * 2))
    print(f"{be.cpu_name()}; engines {a.engines}; threads {threads}", flush=True)

    rows, embs, paths = [], {}, {}
    for th in threads:
        for name in a.engines.split(","):
            eng = Engine(name, a.model, th, max(lengths + [128]))
            if hasattr(eng, "path"):
                paths[name] = eng.path
                print(f"  {name}: path {eng.path}", flush=True)
            for L in lengths:
                n = max(2, a.budget // L)
                batch = max(1, min(32, 8192 // L, n))
                texts = texts_of(tok, stream, L, n)
                ntok, sec, ms = eng.run(texts, batch)
                if th == threads[0] and eng.first is not None:
                    embs[(name, L)] = eng.first[:8]
                rows.append(dict(sweep="length", engine=name, threads=th, length=L, batch=batch, texts=n,
                                 tokens=ntok, seconds=sec, tokens_per_s=ntok / sec, batch_ms=ms))
                print(f"  {name:9s} t={th} L={L:5d} batch={batch:3d}  {ntok / sec:8.1f} tok/s  batch {ms:8.1f} ms", flush=True)
            texts = texts_of(tok, stream, 128, a.batch_texts)
            for b in batches:
                ntok, sec, ms = eng.run(texts, b)
                rows.append(dict(sweep="batch", engine=name, threads=th, length=128, batch=b, texts=a.batch_texts,
                                 tokens=ntok, seconds=sec, tokens_per_s=ntok / sec, batch_ms=ms))
                print(f"  {name:9s} t={th} L=  128 batch={b:3d}  {ntok / sec:8.1f} tok/s  batch {ms:8.1f} ms", flush=True)
            eng.close()

    agreement = []  # per length: min cosine over the first 8 texts of each ullme engine to transformers
    for name in ("ullme", "ullme-bf16"):
        for L in lengths:
            x, y = embs.get((name, L)), embs.get(("hf", L))
            if x is not None and y is not None:
                agreement.append(dict(engine=name, length=L, texts=len(x), min_cosine_to_hf=float(np.min(np.sum(x * y, axis=1)))))
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    a.out.mkdir(parents=True, exist_ok=True)
    out = a.out / f"scaling-{date}"
    json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": be.cpu_name(),
               "nproc": os.cpu_count(), "model": a.model.name, "precision_paths": paths, "rows": rows,
               "agreement": agreement}, open(f"{out}.json", "w"), indent=1)
    print_table(rows)
    if agreement:
        print("\nmin cosine to transformers (first 8 texts per length)")
        for g in agreement:
            print(f"  {g['engine']:10s} L={g['length']:5d}  {g['min_cosine_to_hf']:.6f}")
    plot(rows, f"{out}.png", be.cpu_name())
    print(f"wrote {out}.json and {out}.png")


def print_table(rows):
    print("\nthroughput (tokens/s) by sequence length")
    keys = sorted({(r["engine"], r["threads"]) for r in rows if r["sweep"] == "length"})
    lengths = sorted({r["length"] for r in rows if r["sweep"] == "length"})
    print("| engine | threads | " + " | ".join(f"L={L}" for L in lengths) + " |")
    print("|---|---|" + "---|" * len(lengths))
    for e, t in keys:
        v = {r["length"]: r["tokens_per_s"] for r in rows if r["sweep"] == "length" and r["engine"] == e and r["threads"] == t}
        print(f"| {e} | {t} | " + " | ".join(f"{v[L]:.0f}" if L in v else "-" for L in lengths) + " |")
    bs = sorted({r["batch"] for r in rows if r["sweep"] == "batch"})
    if not bs:
        return
    print("\nL=128: tokens/s / latency of one batch (ms) by batch size")
    print("| engine | threads | " + " | ".join(f"B={b}" for b in bs) + " |")
    print("|---|---|" + "---|" * len(bs))
    for e, t in sorted({(r["engine"], r["threads"]) for r in rows if r["sweep"] == "batch"}):
        v = {r["batch"]: r for r in rows if r["sweep"] == "batch" and r["engine"] == e and r["threads"] == t}
        print(f"| {e} | {t} | " + " | ".join(f"{v[b]['tokens_per_s']:.0f} / {v[b]['batch_ms']:.0f}" if b in v else "-"
                                              for b in bs) + " |")


def plot(rows, path, cpu):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = {"ullme": "libullme", "ullme-bf16": "libullme bf16", "hf": "PyTorch (transformers)", "llamacpp": "llama.cpp (llama-cpp-python)"}
    for e, t in sorted({(r["engine"], r["threads"]) for r in rows if r["sweep"] == "length"}):
        pts = sorted((r["length"], r["tokens_per_s"]) for r in rows
                     if r["sweep"] == "length" and r["engine"] == e and r["threads"] == t)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linestyle="-" if t > 1 else "--",
                label=f"{labels.get(e, e)}, {t} thread{'s' if t > 1 else ''}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("tokens / s")
    ax.set_title(f"SmolLM2-135M embedding throughput\n{cpu}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
