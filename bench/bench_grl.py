#!/usr/bin/env python3
"""GRL training step (L_CL + DPO + L_KL with GradCache) throughput: libullme vs PyTorch + PEFT, same batch.

    python3 bench/bench_grl.py [--threads 2] [--batch 16] [--chunk 4] [--steps 3] [--engines ullme,peft]
                               [--data data/grl/wordnet/train.jsonl] [--offset 0] [--max-len 128]

The batch: lines offset..offset+batch of the GRL data (default data/grl/wordnet/train.jsonl from
`make wordnet-data`, else the committed data/grl/wordnet-tiny), each cut to its first pos_per_sample (1)
positives and neg_per_sample (1) negatives, with the instruction of examples/grl-wordnet-demo.yaml. Texts are
formatted as our GRL trainer (and the reference's collator) formats them: query, positive and negative all as
`{instruction}\\n{text}`, the generation examples as `{alignment_instruction}. Query:\\n{query}\\n\\n{passage}\\n`,
truncated to --max-len (128) tokens with the model's tokenizer. Model: SmolLM2-135M-Instruct.Q4_1.gguf, LoRA r=16,
alpha=32, dropout 0.1 on q, k, v, o, gate, up, down, projection head Linear-ReLU-Linear (d x d, trained),
AdamW lr 1e-4, weight decay 0, grad-norm clip 1.0; losses with the defaults of our GRL config
(examples/grl-wordnet-demo.yaml): NTXentLoss T=0.05 on negated Euclidean distances with the
MultiSimilarity miner (epsilon 0.25), DPO (sigmoid, beta 0.1, reference-free, no label smoothing), KL with
T=0.05; weights 1/1/1; GradCache chunk --chunk, each chunk's gen/KL mean weighted chunk/batch.

Engines (each in its own subprocess, so its peak RSS is its own):
  ullme   `ullme.train(config.yaml)` through the Python binding, exactly what `ullme train` runs: a temporary
          YAML (the demo's keys, this batch as a data file of exactly --batch lines, global_batch_size =
          --batch, so every step trains on this batch), base weights as `ullme train` keeps a GGUF base
          (stored, QLoRA-style). Step time = the library's own per-step `seconds` (tokenise + GradCache step
          + clip/AdamW; not model/data load, not the final checkpoint/adapter write).
  ullme-dense  the same with `weight_storage: dense` (float32 base packed at load).
  ullme-quantized  the same with `weight_storage: quantized` (int8 panels with group scales, made at load).
  ullme-bf16  the same (stored base) with `base_precision: bf16`: the frozen base's forward and backward products
          in bf16 (AVX512_BF16) from a bf16 copy of its weights made at load.
  peft    transformers + peft + pytorch-metric-learning, CPU, float32 (the GGUF dequantised), a re-implementation
          of the reference's GradCacheTrainer.train_step (ullme/trainer/gradcache_trainer.py) without
          torch.distributed: (1) no-grad encode of every chunk (bidirectional 4-D mask, mean pooling,
          head, L2 norm), keeping each chunk's RNG state; (2) the reference's ContrastiveLoss on the whole
          batch (pml NTXentLoss + MultiSimilarityMiner) and its gradient wrt the reps (the cache);
          (3) per chunk, with the RNG state restored: encode with grad, generation forward (causal, LM head,
          get_batch_logps), DPO on (first positive, first negative) and KL(softmax(gen token-mean) ||
          softmax(cos/T)), one backward of <reps, cache> + w*(gen + KL); (4) clip, AdamW.
Timing: one warm-up step, then the median of --steps steps. tokens/s = real (non-padding) tokens of the
step's sequences (B*(1+P+N) contrastive + B*(P+N) generation, each counted once although the GradCache
step runs the contrastive ones forward twice) / seconds per step. Step 1 starts from LoRA B = 0 in both
engines (so the forward is the base model's) and the same projection head (we replicate libullme's
counter-based head initialisation), so both engines' step-1 loss terms must agree; they are printed side
by side. Writes bench/results/grl-<date>.json. Run it on an otherwise idle machine.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_embed import cpu_name, default_model, machine  # noqa: E402  (shared with the embedding bench)
from bench_train import run_step_worker  # noqa: E402  (the same child-process protocol as the LoRA bench)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
INSTRUCTION = "Given a sentence, retrieve the definition of the sense in which its word is used."  # the demo's
ALIGNMENT = "Please write a query that can be used to retrieve above passage."  # GRLTextFormat's default
# Our GRL defaults (examples/grl-wordnet-demo.yaml; docs/method.md §2, §4, §7)
CFG = dict(seed=777, lora_r=16, lora_alpha=32, lora_dropout=0.1, lr=1e-4, weight_decay=0.0, grad_clip=1.0,
           temperature=0.05, beta=0.1, label_smoothing=0.0, miner_epsilon=0.25, cl_weight=1.0, gen_weight=1.0,
           kl_weight=1.0, pos_per_sample=1, neg_per_sample=1)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------- batch

def load_examples(path, offset, n, P, N):
    out = []
    with open(path) as f:
        for i, line in enumerate(f):
            if i < offset or not line.strip():
                continue
            e = json.loads(line)
            if len(e["positive"]) < P or len(e["negative"]) < N:
                continue
            out.append({"query": e["query"], "positive": e["positive"][:P], "negative": e["negative"][:N]})
            if len(out) == n:
                return out
    raise SystemExit(f"{path}: fewer than {n} usable examples from line {offset}")


def training_text(text):           # GRLTextFormat.training: the query format for query, positive, negative
    return INSTRUCTION + "\n" + text


def generation_text(query, passage):  # GRLTextFormat.generationExample
    return ALIGNMENT + ". Query:\n" + query + "\n\n" + passage + "\n"


def tokenize_batch(model_path, examples, max_len):
    """Token ids as the engine's trainer makes them (Model.promptTokens: the tokenizer's special tokens,
    content truncated to max_len minus them), with libullme's own tokenizer."""
    import ullme
    m = ullme.Model(str(model_path), weights="stored", threads=1)
    try:
        probe_plain, probe_special = m.tokenize("a", add_special=False), m.tokenize("a", add_special=True)
        k = list(probe_special).index(probe_plain[0]) if len(probe_plain) else 0
        prefix, suffix = list(probe_special[:k]), list(probe_special[k + len(probe_plain):])
        budget = max_len - len(prefix) - len(suffix)

        def ids(text):
            return [int(x) for x in prefix + list(m.tokenize(text, add_special=False))[:budget] + suffix]
        cons = [[ids(training_text(t)) for t in [e["query"]] + e["positive"] + e["negative"]] for e in examples]
        gen = [[ids(generation_text(e["query"], p)) for p in e["positive"] + e["negative"]] for e in examples]
    finally:
        m.close()
    return cons, gen


# ---------------------------------------------------------------------------------------------- libullme

YAML = """# written by bench/bench_grl.py
model: {model}
data:
  - name: grlbench
    file: {data}
    instruction: {instruction}
output_dir: {out}
pooling: mean
attention: bidirectional
log_every: 1
drop_last: false
max_seq_length: {max_len}
pos_per_sample: {P}
neg_per_sample: {N}
loar_r: {lora_r}
lora_alpha: {lora_alpha}
dropout: {lora_dropout}
encoder_lora_target_modules: all
seed: {seed}
learning_rate: {lr}
min_learning_rate: 1.0e-7
warmpup_proportion: 0.0
is_cosine_annealing: false
global_batch_size: {B}
gc_chunk_size: {chunk}
max_epochs: {epochs}
max_steps: {epochs}
grad_norm_clip: {grad_clip}
weight_decay: {weight_decay}
checkpoint_interval: 1000000   # only the final checkpoint (after the timed steps)
loss_type: NTXentLoss
temperature: {temperature}
use_miner: true
is_distance: true
use_gen: true
gen_loss_type: sigmoid
beta: {beta}
label_smoothing: {label_smoothing}
use_kl: true
cl_weight: {cl_weight}
gen_weight: {gen_weight}
kl_weight: {kl_weight}
weight_storage: {storage}
base_precision: {base_precision}
threads: {threads}
"""


def worker_ullme(job):
    import ullme
    storage = {"ullme-dense": "dense", "ullme-quantized": "quantized"}.get(job["engine"], "stored")
    base_precision = "bf16" if job["engine"] == "ullme-bf16" else "exact"
    with tempfile.TemporaryDirectory(prefix="bench-grl-") as tmp:
        data = Path(tmp) / "batch.jsonl"
        with open(data, "w") as f:
            for i, e in enumerate(job["examples"]):
                f.write(json.dumps(dict(e, id=i)) + "\n")
        cfg = Path(tmp) / "grl.yaml"
        cfg.write_text(YAML.format(model=json.dumps(job["model"]), data=json.dumps(str(data)),
                                   instruction=json.dumps(INSTRUCTION), out=json.dumps(str(Path(tmp) / "run")),
                                   max_len=job["max_len"], P=CFG["pos_per_sample"], N=CFG["neg_per_sample"],
                                   B=len(job["examples"]), chunk=job["chunk"], epochs=job["steps"] + 1,
                                   storage=storage, base_precision=base_precision, threads=job["threads"], **{k: v for k, v in CFG.items()
                                                       if k not in ("pos_per_sample", "neg_per_sample")}))
        walls, last = [], [time.perf_counter()]

        def on_step(rec):
            now = time.perf_counter()
            walls.append(now - last[0])
            last[0] = now

        t0 = time.perf_counter()
        records = ullme.train(str(cfg), callback=on_step, show_progress_bar=False)
        total = time.perf_counter() - t0
    r1 = records[0]
    return dict(step_seconds=[r["seconds"] for r in records[1:]], warmup_seconds=records[0]["seconds"],
                wall_between_callbacks=walls[1:], run_seconds_incl_load_and_export=total,
                step1=dict(cl=r1["contrastive"], gen=r1["generative"], kl=r1["kl"], total=r1["loss"],
                           grad_norm=r1["grad_norm"]),
                losses=[dict(cl=r["contrastive"], gen=r["generative"], kl=r["kl"], total=r["loss"]) for r in records],
                engine_log_tokens_per_step=int(round(r1["tokens_per_second"] * r1["seconds"])),
                weight_storage=storage, base_precision=base_precision, library_version=ullme.library_version(), library_path=ullme.library_path())


# ---------------------------------------------------------------------------------------------- PyTorch + PEFT

def splitmix64(z):
    import numpy as np
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def ullme_head_init(dim, seed):
    """libullme's ProjectionHead(dim:seed:) (Train/ProjectionHead.swift, Train/Random.swift): every weight and
    bias U(-1/sqrt(d), 1/sqrt(d)) from KeyedRandom(rawKey: seed), counters w1, b1, w2, b2 consecutively."""
    import numpy as np
    key = splitmix64(np.array([seed], dtype=np.uint64))[0]
    n = 2 * dim * dim + 2 * dim
    c = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = splitmix64(key ^ splitmix64(c + np.uint64(0x9E3779B97F4A7C15)))
    u = (bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
    v = (u * np.float32(2) - np.float32(1)) * (np.float32(1) / np.sqrt(np.float32(dim)))
    w1, b1 = v[:dim * dim].reshape(dim, dim), v[dim * dim:dim * dim + dim]
    w2, b2 = v[dim * dim + dim:2 * dim * dim + dim].reshape(dim, dim), v[2 * dim * dim + dim:]
    return w1, b1, w2, b2


def pad_right(seqs, pad_id):
    import torch
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def get_batch_logps(logits, labels):
    """The reference's trainer/utils.get_batch_logps (label_pad_token_id -100): (sum, token mean) of the
    next-token log-probs over labelled positions."""
    import torch
    labels = labels[:, 1:].clone()
    mask = labels != -100
    logits = logits[:, :-1, :]
    labels[~mask] = 0
    per_token = torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
    s = (per_token * mask).sum(-1)
    return s, s / mask.sum(-1)


def worker_peft(job):
    import numpy as np
    import torch
    import torch.nn.functional as F
    import transformers
    import peft
    import pytorch_metric_learning
    from pytorch_metric_learning import distances, losses as pml_losses, miners
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import LoraConfig, get_peft_model
    threads = job["threads"]
    torch.set_num_threads(threads)
    torch.manual_seed(CFG["seed"])
    path = Path(job["model"])
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    lm.config.use_cache = False
    model = get_peft_model(lm, LoraConfig(r=CFG["lora_r"], lora_alpha=CFG["lora_alpha"], lora_dropout=CFG["lora_dropout"],
                                          target_modules=TARGETS, bias="none"))
    model.train()
    decoder = model.base_model.model.model   # LlamaModel (final norm included) with the LoRA layers injected
    d = lm.config.hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), torch.nn.Linear(d, d))
    with torch.no_grad():   # the same initial head as libullme (LoRA B = 0 in both: same step-1 forward)
        for p, v in zip([head[0].weight, head[0].bias, head[2].weight, head[2].bias], ullme_head_init(d, CFG["seed"])):
            p.copy_(torch.from_numpy(v))
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=CFG["lr"], weight_decay=CFG["weight_decay"])

    # The reference's ContrastiveLoss (trainer/loss.py), world size 1
    distance = distances.LpDistance(normalize_embeddings=True)
    ntxent = pml_losses.NTXentLoss(temperature=CFG["temperature"], distance=distance)
    miner = miners.MultiSimilarityMiner(epsilon=CFG["miner_epsilon"])
    T, beta, eps = CFG["temperature"], CFG["beta"], CFG["label_smoothing"]

    cons, gen = job["cons_ids"], job["gen_ids"]
    B, S, K = len(cons), len(cons[0]), len(gen[0])
    P = CFG["pos_per_sample"]
    N = S - 1 - P
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # check: HF's tokenizer gives the ids libullme's did (the batch was tokenised by libullme)
    hf_ids = [tok(training_text(t), truncation=True, max_length=job["max_len"])["input_ids"]
              for e in job["examples"] for t in [e["query"]] + e["positive"] + e["negative"]]
    tokenizers_agree = hf_ids == [s for ex in cons for s in ex]
    chunks = [list(range(s, min(s + job["chunk"], B))) for s in range(0, B, job["chunk"])]
    minf = torch.finfo(torch.float32).min

    def chunk_tensors(ch):
        ids, mask = pad_right([s for b in ch for s in cons[b]], pad_id)
        bidir = ((1 - mask)[:, None, None, :].float() * minf).expand(-1, 1, ids.shape[1], -1)  # padding keys masked
        gids, gmask = pad_right([s for b in ch for s in gen[b]], pad_id)
        glabels = gids.masked_fill(gmask == 0, -100)
        return ids, mask, bidir.contiguous(), gids, gmask, glabels

    batches = [chunk_tensors(ch) for ch in chunks]   # tokenised, padded once (the collator's work)

    def encode(ids, mask, bidir):
        h = decoder(input_ids=ids, attention_mask=bidir).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1)
        return F.normalize(head(pooled), p=2, dim=-1)

    losses, details = [], {}

    def step():
        opt.zero_grad(set_to_none=True)
        # (1) no-grad pass over every chunk, remembering the RNG state (the reference's RandContext)
        states, reps = [], []
        with torch.no_grad():
            for ids, mask, bidir, *_ in batches:
                states.append(torch.get_rng_state())
                reps.append(encode(ids, mask, bidir).view(-1, S, d))
        reps = torch.cat(reps).detach().requires_grad_(True)   # [B, S, d]
        # (2) L_CL on the whole batch, its gradient wrt the reps = the cache
        q_labels = torch.arange(B)
        labels = torch.cat([q_labels, q_labels.repeat_interleave(P), torch.arange(B * N) + B])
        emb = torch.cat([reps[:, 0], reps[:, 1:1 + P].reshape(-1, d), reps[:, 1 + P:].reshape(-1, d)])
        cl = ntxent(emb, labels, miner(emb, labels))
        cl.backward()
        cache = reps.grad * CFG["cl_weight"]
        # (3) per chunk, same RNG state: encode + generate with grad, one backward
        gen_total = kl_total = 0.0
        for ch, (ids, mask, bidir, gids, gmask, glabels), state in zip(chunks, batches, states):
            w = len(ch) / B   # our default: each chunk's gen/KL mean weighted chunk/batch (docs/method.md §5)
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(state)
                proj = encode(ids, mask, bidir)
                surrogate = torch.dot(proj.flatten(), cache[ch[0]:ch[-1] + 1].flatten())
                logits = model(input_ids=gids, attention_mask=gmask).logits
                logps, mean_logps = get_batch_logps(logits, glabels)
                logps, mean_logps = logps.view(len(ch), K), mean_logps.view(len(ch), K)
                x = logps[:, 0] - logps[:, P]                      # reference-free: ref log-ratio 0
                gen_loss = (-F.logsigmoid(beta * x) * (1 - eps) - F.logsigmoid(-beta * x) * eps).mean()
                proj = proj.view(len(ch), S, d)
                dual = torch.cosine_similarity(proj[:, :1], proj[:, 1:], dim=-1)   # [Bc, K]
                kl = F.kl_div(torch.log_softmax(dual / T, -1), torch.softmax(mean_logps, -1).detach(),
                              reduction="batchmean")
                kl = torch.nan_to_num(kl, nan=0.0)
            (surrogate + w * (CFG["gen_weight"] * gen_loss + CFG["kl_weight"] * kl)).backward()
            gen_total += w * gen_loss.item()
            kl_total += w * kl.item()
        # (4) clip, AdamW
        norm = torch.nn.utils.clip_grad_norm_(params, CFG["grad_clip"])
        opt.step()
        rec = dict(cl=cl.item(), gen=gen_total, kl=kl_total,
                   total=CFG["cl_weight"] * float(cl) + CFG["gen_weight"] * gen_total + CFG["kl_weight"] * kl_total,
                   grad_norm=float(norm))
        losses.append(rec)

    step()   # warm-up (step 1: its losses are the ones compared)
    ts = []
    for _ in range(job["steps"]):
        t = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t)
    return dict(step_seconds=ts, step1=losses[0], losses=losses, tokenizers_agree=tokenizers_agree,
                trainable_parameters=sum(p.numel() for p in params), torch=torch.__version__,
                transformers=transformers.__version__, peft=peft.__version__,
                pytorch_metric_learning=pytorch_metric_learning.__version__)


def run_worker(job_path):
    job = json.load(open(job_path))
    fn = worker_ullme if job["engine"].startswith("ullme") else worker_peft
    out = fn(job)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------- driver

def main():
    ap = argparse.ArgumentParser(description="libullme vs PyTorch + PEFT: one GRL (CL + DPO + KL, GradCache) step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="global batch (queries per step)")
    ap.add_argument("--chunk", type=int, default=4, help="GradCache chunk size (queries)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("--engines", default="ullme,peft", help="ullme, ullme-dense, ullme-quantized, ullme-bf16, peft")
    ap.add_argument("--max-len", type=int, default=128, help="max_seq_length")
    ap.add_argument("--data", type=Path, default=None, help="GRL JSONL (default: WordNet train, else wordnet-tiny)")
    ap.add_argument("--offset", type=int, default=0, help="first line of the batch in --data")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return run_worker(args.worker)
    model = args.model or default_model()
    if not model.is_file():
        raise SystemExit(f"{model} missing: run scripts/fetch_models.sh")
    data = args.data
    if data is None:
        data = ROOT / "data/grl/wordnet/train.jsonl"
        if not data.is_file():
            data = ROOT / "data/grl/wordnet-tiny/train.jsonl"
    P, N = CFG["pos_per_sample"], CFG["neg_per_sample"]
    examples = load_examples(data, args.offset, args.batch, P, N)
    cons, gen = tokenize_batch(model, examples, args.max_len)
    n_cons = sum(len(s) for ex in cons for s in ex)
    n_gen = sum(len(s) for ex in gen for s in ex)
    ntok = n_cons + n_gen
    print(f"GRL step: {args.batch} queries x (1 + {P} + {N}) contrastive sequences ({n_cons} tokens) + "
          f"{args.batch} x {P + N} generation sequences ({n_gen} tokens) = {ntok} tokens/step; GradCache chunk "
          f"{args.chunk}; {args.threads} threads; median of {args.steps} steps after 1 warm-up; {cpu_name()}",
          flush=True)
    results = {}
    for engine in args.engines.split(","):
        job = dict(engine=engine, examples=examples, cons_ids=cons, gen_ids=gen, threads=args.threads,
                   steps=args.steps, chunk=args.chunk, max_len=args.max_len, model=str(model))
        try:
            r = results[engine] = run_step_worker(__file__, job, args.threads, ntok)
            print(f"  {engine:12s} {r['tokens_per_s']:8.1f} tokens/s  {r['seconds_per_step']:8.2f} s/step  "
                  f"peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)
        except Exception as ex:  # keep going: report which engine failed and why
            results[engine] = {"error": f"{type(ex).__name__}: {ex}"}
            print(f"  {engine:12s} FAILED: {results[engine]['error']}", flush=True)

    ok = [e for e in results if "tokens_per_s" in results[e]]
    print("\nstep 1 (LoRA B = 0, same head: the base model's terms)")
    print(f"  {'term':10s}" + "".join(f"{e:>14s}" for e in ok) + ("   rel. diff" if len(ok) >= 2 else ""))
    agreement = {}
    for term in ("cl", "gen", "kl", "total", "grad_norm"):
        vals = [results[e]["step1"][term] for e in ok]
        line = f"  {term:10s}" + "".join(f"{v:14.6f}" for v in vals)
        if len(ok) >= 2 and term != "grad_norm":
            rel = abs(vals[0] - vals[-1]) / max(abs(vals[-1]), 1e-12)
            agreement[term] = rel
            line += f"   {rel:.1e}"
        elif term == "grad_norm":
            line += "   (differs: LoRA A init and dropout masks are each engine's own)"
        print(line)
    if "peft" in results and "tokenizers_agree" in results["peft"]:
        print(f"  HF tokenizer ids == libullme's: {results['peft']['tokenizers_agree']}")

    ratios = {}
    for e in ok:
        if e != "peft" and "peft" in ok:
            ratios[f"{e}/peft tokens/s"] = results[e]["tokens_per_s"] / results["peft"]["tokens_per_s"]
            ratios[f"peft/{e} peak RSS"] = results["peft"]["peak_rss_mb"] / results[e]["peak_rss_mb"]
    now = datetime.datetime.now()
    print(f"\n| engine | tokens/s | s/step | peak RSS MB | vs peft (speed) |\n|---|---|---|---|---|")
    for e in ok:
        r = results[e]
        vs = r["tokens_per_s"] / results["peft"]["tokens_per_s"] if "peft" in ok else float("nan")
        print(f"| {e} | {r['tokens_per_s']:.1f} | {r['seconds_per_step']:.2f} | {r['peak_rss_mb']:.0f} | {vs:.2f}x |")
    print(f"{now.strftime('%Y-%m-%d')}, {cpu_name()}, {args.threads} threads, {ntok} tokens/step")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"grl-{now.strftime('%Y-%m-%d')}{args.tag}.json"
    json.dump({"date": now.isoformat(timespec="seconds"), **machine(), "nproc": os.cpu_count(),
               "threads": args.threads, "batch": args.batch, "chunk": args.chunk, "max_len": args.max_len,
               "pos_per_sample": P, "neg_per_sample": N, "data": str(data), "offset": args.offset,
               "tokens_per_step": ntok, "contrastive_tokens_per_step": n_cons, "generation_tokens_per_step": n_gen,
               "timed_steps": args.steps, "model": model.name, "config": CFG, "lora_targets": TARGETS,
               "load_average_at_end": os.getloadavg(), "results": results, "ratios": ratios,
               "step1_relative_difference": agreement, "python": platform.python_version()}, open(path, "w"), indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
