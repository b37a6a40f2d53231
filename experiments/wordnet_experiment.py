#!/usr/bin/env python3
"""The base vs CL vs CL+SFT vs GRL experiment on SmolLM2-135M (issue: evaluation and proof of quality).

Five models, one table:
  1. base, causal attention, mean pooling          (no training)
  2. base, bidirectional attention, mean pooling   (no training)
  3. LoRA + head fine-tuned with CL only           (NTXent, in-batch + hard negatives)
  4. CL + SFT                                      (CL + next-token loss on the positive passage)
  5. GRL = CL + DPO + KL                           (the paper's method)
(3)-(5) share the data (WordNet, `make wordnet-data`), seed, batch size, learning rate and number of
steps: only the loss terms differ (examples/grl-wordnet-demo.yaml is the template). Every model is
evaluated on the man-page retrieval set (nDCG@10, MRR@10, ...) and on Lee STS (Spearman, Pearson)
with bidirectional attention for (2)-(5).

    python3 experiments/wordnet_experiment.py              # the full run (~1.5 h on 2 cores): build/results/experiment/
    python3 experiments/wordnet_experiment.py --tiny       # CI: the same pipeline on tiny data, 2 steps per run

Idempotent: a finished training run (its adapter/) or evaluation (its JSON) is reused; --force redoes
everything. Writes results/<name>/table.md (the README table) and results/<name>/summary.json; the full
run exits non-zero unless every fine-tuned model beats the base model (bidirectional) on man-page nDCG@10.
"""
import argparse, json, os, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)

RUNS = [  # name, label, loss-term overrides of the template
    ("cl", "CL only", {"use_gen": False, "use_kl": False}),
    ("cl-sft", "CL + SFT", {"use_gen": True, "gen_loss_type": "sft", "use_kl": False}),
    ("grl", "GRL (CL + DPO + KL)", {"use_gen": True, "gen_loss_type": "sigmoid", "use_kl": True}),
]

FULL = dict(out="build/results/experiment", data="data/grl/wordnet/train.jsonl", steps=60, batch=16, chunk=4,
            seq=128, manpages="data/eval/manpages", manpages_limit=None, eval_max_length=256)
TINY = dict(out="build/results/experiment-tiny", data="data/grl/wordnet-tiny/train.jsonl", steps=2, batch=4, chunk=2,
            seq=48, manpages="data/eval/manpages-30", manpages_limit=30, eval_max_length=64)


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def build_data(p):
    if not os.path.exists(p["data"]):
        sys.exit(f"experiment: {p['data']} is missing: run `make wordnet-data` (needs Debian's wordnet-base)")
    cmd = [sys.executable, "scripts/data/build_manpages_eval.py", "--out", p["manpages"]]
    if p["manpages_limit"]:
        cmd += ["--limit", str(p["manpages_limit"])]
    run(cmd)
    run([sys.executable, "scripts/data/build_lee_sts.py", "--out", "data/eval/lee"])


def train(p, bin_, name, overrides, force):
    import yaml
    run_dir = f"{p['out']}/runs/{name}"
    if os.path.exists(f"{run_dir}/adapter/adapter_model.safetensors") and not force:
        print(f"experiment: {name}: reusing {run_dir}", flush=True)
        return json.load(open(f"{run_dir}/wall.json"))["seconds"]
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    cfg = yaml.safe_load(open("examples/grl-wordnet-demo.yaml"))
    cfg["data"][0]["file"] = p["data"]
    cfg.update(output_dir=run_dir, max_steps=p["steps"], global_batch_size=p["batch"], gc_chunk_size=p["chunk"],
               max_seq_length=p["seq"], checkpoint_interval=max(p["steps"] // 2, 1))
    cfg.update(overrides)
    if not cfg["use_gen"]:
        cfg["gen_loss_type"] = None
    with open(f"{run_dir}/config.yaml", "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    t0 = time.time()
    run([bin_, "train", f"{run_dir}/config.yaml", "--quiet"])
    seconds = time.time() - t0
    json.dump({"seconds": seconds}, open(f"{run_dir}/wall.json", "w"))
    return seconds


def evaluate(p, bin_, tag, attention, adapter, force):
    results = {}
    for task, data in (("retrieval", p["manpages"]), ("sts", "data/eval/lee")):
        path = f"{p['out']}/eval/{tag}-{task}.json"
        if force or not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            cmd = [bin_, "eval", "--task", task, "--data", data, "--attention", attention, "--pooling", "mean",
                   "--max-length", str(p["eval_max_length"]), "--output", path + ".tmp", "--quiet"]
            cmd += ["--adapter", adapter] if adapter else ["--no-adapter"]  # the base model alone
            run(cmd)
            os.replace(path + ".tmp", path)
        results[task] = json.load(open(path))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CI size: tiny data, 2 steps per run")
    ap.add_argument("--force", action="store_true", help="retrain and re-evaluate everything")
    ap.add_argument("--bin", default=os.environ.get("ULLME_BIN", "build/bin/ullme"))
    ap.add_argument("--steps", type=int, help="override the number of training steps")
    a = ap.parse_args()
    p = dict(TINY if a.tiny else FULL)
    if a.steps:
        p["steps"] = a.steps
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"experiment: {a.bin} not found: run make (or pass --bin)")
    build_data(p)
    os.makedirs(p["out"], exist_ok=True)
    started = time.strftime("%Y-%m-%d", time.gmtime())

    rows = [("base", "base (no training)", "causal", None, None), ("base", "base (no training)", "bidirectional", None, None)]
    for name, label, overrides in RUNS:
        seconds = train(p, a.bin, name, overrides, a.force)
        rows.append((name, label, "bidirectional", f"{p['out']}/runs/{name}/adapter", seconds))

    summary = []
    for name, label, attention, adapter, seconds in rows:
        r = evaluate(p, a.bin, f"{name}-{attention}", attention, adapter, a.force)
        m, s = r["retrieval"]["metrics"], r["sts"]["metrics"]
        summary.append(dict(model=name, label=label, attention=attention, adapter=adapter, train_seconds=seconds,
                            ndcg10=m["ndcg@10"], mrr10=m["mrr@10"], recall10=m["recall@10"], map=m["map"],
                            spearman=s["spearman"], pearson=s["pearson"],
                            queries=r["retrieval"]["queries"], documents=r["retrieval"]["documents"]))

    first = summary[0]
    lines = [f"| # | model | attention | man pages nDCG@10 | MRR@10 | R@10 | MAP | Lee Spearman | Lee Pearson | training time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i, s in enumerate(summary, 1):
        t = "-" if s["train_seconds"] is None else f"{s['train_seconds'] / 60:.1f} min"
        lines.append(f"| {i} | {s['label']} | {s['attention']} | {s['ndcg10']:.4f} | {s['mrr10']:.4f} | {s['recall10']:.4f} | "
                     f"{s['map']:.4f} | {s['spearman']:.4f} | {s['pearson']:.4f} | {t} |")
    cmd = "python3 experiments/wordnet_experiment.py" + (" --tiny" if a.tiny else "")
    lines += ["", f"SmolLM2-135M-Instruct Q4_1, mean pooling, man pages: {first['queries']} queries / "
              f"{first['documents']} documents, texts truncated to {p['eval_max_length']} tokens; Lee: 1,225 pairs. "
              f"Training (3-5): WordNet ({p['data']}), {p['steps']} steps, batch {p['batch']} (GradCache chunk "
              f"{p['chunk']}), {p['seq']} tokens, LoRA r16/alpha 32, lr 2e-4, seed 777. Command: `{cmd}`; run {started}."]
    table = "\n".join(lines) + "\n"
    open(f"{p['out']}/table.md", "w").write(table)
    json.dump({"date": started, "settings": p, "rows": summary}, open(f"{p['out']}/summary.json", "w"), indent=1)
    print(table)

    base = summary[1]["ndcg10"]
    losers = [s["label"] for s in summary[2:] if not s["ndcg10"] > base]
    if losers and not a.tiny:
        sys.exit(f"experiment: {', '.join(losers)} did not beat the base model (nDCG@10 {base:.4f})")
    print("experiment: every fine-tuned model beats the base on man-page nDCG@10" if not losers else
          f"experiment (tiny pipeline check): not better than base: {', '.join(losers)}")


if __name__ == "__main__":
    main()
