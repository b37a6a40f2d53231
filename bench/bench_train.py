#!/usr/bin/env python3
"""LoRA training throughput of libullme vs PyTorch + PEFT, same run, same data, same thread count.

    python3 bench/bench_train.py [--threads 2] [--batch 8] [--tokens 128] [--steps 3]
                                 [--objectives embed,lm] [--engines ullme,ullme-ckpt,peft,peft-ckpt]

A step is one optimiser step on `batch` texts of exactly `tokens` tokens (English paragraphs chosen as in
bench_embed.py, ids from the model's tokenizer, no padding anywhere) with SmolLM2-135M-Instruct.Q4_1.gguf
as the frozen base and LoRA r=16, alpha=32, dropout 0.1 on every attention and MLP linear (q, k, v, o, gate,
up, down), AdamW, for two objectives:
  embed  bidirectional attention, mean pooling, projection head Linear-ReLU-Linear (d x d, trained fully),
         L2 normalise, loss = <reps, G> for a fixed G (libullme: ullme_trainer_embedding_backward with
         d_reps = G, exactly what GradCache feeds it; PEFT: the same graph in torch, 4-D bidirectional mask)
  lm     causal attention, next-token cross-entropy on every token (HF's labels = input_ids)
Engines (each runs in its own subprocess, so its peak RSS is its own):
  ullme       the Python binding (ullme.Trainer) over libullme.so, n_threads = --threads, the base's
              weights dense (float32, packed at load)
  ullme-stored  the same with the base's weights as stored in the GGUF (Q4_1 blocks dequantised inside
              every product, QLoRA-style; what `ullme train` uses for a GGUF base)
  ullme-ckpt, ullme-stored-ckpt  ... with activation_checkpointing=True (each layer recomputed in backward)
  peft        transformers + peft, the GGUF dequantised to float32, torch.set_num_threads(--threads)
  peft-ckpt   the same with model.gradient_checkpointing_enable() (use_reentrant=False)
Timing: one warm-up step, then the median of --steps steps. Reports tokens/s, peak RSS (ru_maxrss of the
worker process, model load included) and ullme/peft ratios; writes bench/results/train-<date>.json.
Run it on an otherwise idle machine: the numbers are meaningless while other builds share the cores.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_embed import cpu_name  # noqa: E402  (shared with the embedding bench)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed_steps(step, n):
    step()  # warm-up
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t)
    return ts


def fixed_g(n, d):
    import numpy as np
    return (np.sin(np.arange(n * d, dtype=np.float64) * 0.37) / n).astype(np.float32).reshape(n, d)


def worker_ullme(job):
    import ullme
    seqs, threads, ckpt = job["ids"], job["threads"], job["engine"].endswith("-ckpt")
    m = ullme.Model(job["model"], threads=threads, weights="stored" if "-stored" in job["engine"] else "dense")
    t = ullme.Trainer(m, lora_rank=16, lora_alpha=32.0, lora_dropout=0.1, learning_rate=1e-4, warmup_proportion=0,
                      steps_per_epoch=1000, activation_checkpointing=ckpt)
    G = fixed_g(len(seqs), m.dim)
    losses = []

    def step():
        if job["objective"] == "embed":
            reps = t.embedding_backward(seqs, G, attention="bidirectional")
            losses.append(float((reps * G).sum()))
        else:
            losses.append(t.lm_backward(seqs, seqs))
        t.step()

    ts = timed_steps(step, job["steps"])
    return dict(step_seconds=ts, losses=losses, trainable_parameters=t.parameter_count,
                library_version=ullme.library_version(), library_path=ullme.library_path())


def worker_peft(job):
    import torch
    import transformers
    import peft
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    threads = job["threads"]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    path = Path(job["model"])
    lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    if job["engine"] == "peft-ckpt":
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.1, target_modules=TARGETS, bias="none")
    model = get_peft_model(lm, cfg)
    model.train()
    d = lm.config.hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), torch.nn.Linear(d, d))
    params = [p for p in model.parameters() if p.requires_grad]
    if job["objective"] == "embed":
        params += list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.tensor(job["ids"], dtype=torch.long)
    B, L = ids.shape
    G = torch.from_numpy(fixed_g(B, d))
    bidir = torch.zeros(B, 1, L, L)   # additive 4-D mask: every token sees every token (no padding)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        if job["objective"] == "embed":
            h = model.base_model.model.model(input_ids=ids, attention_mask=bidir).last_hidden_state
            reps = torch.nn.functional.normalize(head(h.mean(1)), dim=-1)
            loss = (reps * G).sum()
        else:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss))

    ts = timed_steps(step, job["steps"])
    return dict(step_seconds=ts, losses=losses, trainable_parameters=sum(p.numel() for p in params),
                torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__)


def run_worker(job_path):
    job = json.load(open(job_path))
    fn = worker_ullme if job["engine"].startswith("ullme") else worker_peft
    out = fn(job)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


def texts_ids(model, n, tokens):
    from bench_embed import load_tokenizer, passages
    tok = load_tokenizer(model)
    texts = passages(tok, n, tokens)
    ids = [tok(t, add_special_tokens=False)["input_ids"][:tokens] for t in texts]
    # decode(encode) can merge differently: re-cut, and pad with the first ids if a text came out short
    return [(s * 2)[:tokens] for s in ids]


def run_step_worker(script, job, threads, ntok):
    """Runs `script --worker JOB.json` in a child process with `threads` threads (its own peak RSS) and returns
    the dict of its last "RESULT {json}" line plus seconds_per_step (median of step_seconds) and tokens_per_s
    (ntok per step). Raises with the child's last output line when it fails."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        p = subprocess.run([sys.executable, str(script), "--worker", f.name], env=env, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode != 0 or not line:
        tail = (p.stderr or p.stdout).strip().splitlines()
        raise RuntimeError(tail[-1] if tail else f"exit {p.returncode}")
    r = json.loads(line[-1][7:])
    r["seconds_per_step"] = statistics.median(r["step_seconds"])
    r["tokens_per_s"] = ntok / r["seconds_per_step"]
    return r


def main():
    ap = argparse.ArgumentParser(description="libullme vs PyTorch + PEFT LoRA training throughput")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="texts per step")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per text")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("--objectives", default="embed,lm")
    ap.add_argument("--engines", default="ullme,ullme-stored,ullme-ckpt,peft,peft-ckpt")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return run_worker(args.worker)
    from bench_embed import default_model
    model = args.model or default_model()
    if not model.is_file():
        raise SystemExit(f"{model} missing: run scripts/fetch_models.sh")
    ids = texts_ids(model, args.batch, args.tokens)
    ntok = args.batch * args.tokens
    print(f"{args.batch} texts x {args.tokens} tokens per step, {args.threads} threads, median of {args.steps} steps; "
          f"{cpu_name()}", flush=True)
    results = {}
    for objective in args.objectives.split(","):
        for engine in args.engines.split(","):
            job = dict(engine=engine, objective=objective, ids=ids, threads=args.threads, steps=args.steps,
                       model=str(model))
            key = f"{objective}/{engine}"
            try:
                r = results[key] = run_step_worker(__file__, job, args.threads, ntok)
                print(f"  {key:18s} {r['tokens_per_s']:8.1f} tokens/s  {r['seconds_per_step']:7.2f} s/step  "
                      f"peak RSS {r['peak_rss_mb']:7.0f} MB  losses {[round(x, 4) for x in r['losses']]}", flush=True)
            except Exception as ex:  # keep going: report which engine failed and why
                results[key] = {"error": f"{type(ex).__name__}: {ex}"}
                print(f"  {key:18s} FAILED: {results[key]['error']}", flush=True)
    ratios = {}
    for objective in args.objectives.split(","):
        for a, b in (("ullme", "peft"), ("ullme-stored", "peft"), ("ullme-ckpt", "peft-ckpt")):
            ra, rb = results.get(f"{objective}/{a}", {}), results.get(f"{objective}/{b}", {})
            if "tokens_per_s" in ra and "tokens_per_s" in rb:
                ratios[f"{objective}: {a}/{b} tokens/s"] = ra["tokens_per_s"] / rb["tokens_per_s"]
                ratios[f"{objective}: {b}/{a} peak RSS"] = rb["peak_rss_mb"] / ra["peak_rss_mb"]
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}")
    now = datetime.datetime.now()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train-{now.strftime('%Y-%m-%d')}{args.tag}.json"
    json.dump({"date": now.isoformat(timespec="seconds"), "cpu": cpu_name(), "nproc": os.cpu_count(),
               "threads": args.threads, "batch": args.batch, "tokens_per_text": args.tokens, "tokens_per_step": ntok,
               "timed_steps": args.steps, "model": model.name, "lora": {"r": 16, "alpha": 32, "dropout": 0.1,
                                                                        "targets": TARGETS},
               "load_average_at_end": os.getloadavg(), "results": results, "ratios": ratios,
               "python": platform.python_version()}, open(path, "w"), indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
