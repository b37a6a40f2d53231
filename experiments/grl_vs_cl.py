#!/usr/bin/env python3
"""The GRL-vs-CL experiment on the offline mixture: each arm is the default model's recipe
(experiments/configs/default-model.yaml) with a few keys changed, so the arms differ only in the loss.

    python3 experiments/grl_vs_cl.py train ARM --seed S   # one run: train, export, record (~45-60 min)
    python3 experiments/grl_vs_cl.py eval                  # every recorded run through the evaluation suite
    python3 experiments/grl_vs_cl.py report                # docs/results/grl-vs-cl/README.md + losses.png
    python3 experiments/grl_vs_cl.py arms                  # the arms and their overrides

train: `ullme train` on the derived config in build/grl-vs-cl/<arm>-s<seed>/ (the run directory, ignored by
git), its adapter exported in float16 as the default model's is (release_model.export) into
build/grl-vs-cl/<arm>-s<seed>/export, and the record (config.yaml, log.jsonl, mixture.json) written to
docs/results/grl-vs-cl/runs/<arm>-s<seed>/. The CL arm at the recipe's own seed is the shipped default model
(adapters/default, its record docs/results/default-model/), so it is not trained again.

eval: experiments/eval_suite.py over the suite's tasks with one row per arm (its seeds pooled: the CI
resamples seeds and queries), GRL-vs-CL and arm-vs-base paired comparisons, into docs/results/grl-vs-cl/eval.
Rows whose run already has per-query results there are read back instead of re-embedded (evalkit "saved"),
as are the base, MiniLM and BM25 rows of the default model's evaluation.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))
from release_model import CONFIG, export  # noqa: E402

RECIPE = os.path.relpath(CONFIG, ROOT)
RUNS = "build/grl-vs-cl"
RECORD = "docs/results/grl-vs-cl"
DEFAULT_EVAL = "docs/results/default-model/eval"
DEFAULT_ROW = "default (base + adapter)"
TASKS = ["data/eval/debian-packages", "data/eval/info-manuals", "data/eval/debian-faq", "data/eval/manpages",
         "data/eval/wordnet-sts", "data/eval/lee"]

# The loss of each arm, as YAML keys over the recipe (CL). GRL = CL + DPO (sigmoid) + KL, the paper's method;
# CL + SFT = CL + next-token loss on the positives' generation examples. GRL-T0.1 is the first of the paper's
# levers: temperature 0.1 (GenC's), which softens both the contrastive term and the KL term's dual scores
# (the reference uses one temperature for both), so the KL target (softmax of mean token log-probs, nearly
# flat) pulls less against the contrastive ranking.
GRL = {"use_gen": True, "gen_loss_type": "sigmoid", "beta": 0.1, "use_kl": True}
ARMS = {
    "CL": {},
    "CL+SFT": {"use_gen": True, "gen_loss_type": "sft"},
    "GRL": GRL,
    "GRL-T0.1": {**GRL, "temperature": 0.1},
}


def recipe():
    with open(CONFIG, encoding="utf-8") as f:
        return yaml.safe_load(f)


def run_name(arm, seed):
    return f"{arm.lower().replace('+', '-')}-s{seed}"


def is_shipped_default(arm, seed):
    return arm == "CL" and seed == recipe()["seed"]


def arm_config(arm, seed):
    cfg = recipe()
    cfg.update(ARMS[arm], seed=seed, output_dir=f"{RUNS}/{run_name(arm, seed)}/run")
    return cfg


def record_mixture(record):
    """The mixture a run saw: its meta.json (counts per data set) and each file's sha256. The mixture is
    rebuilt from the machine's Debian lists and installed pages, which drift a little between machines."""
    mixture = os.path.dirname(os.path.join(ROOT, recipe()["data"][0]["file"]))
    with open(f"{mixture}/meta.json", encoding="utf-8") as f:
        meta = json.load(f)
    meta["sha256"] = {}
    for d in recipe()["data"]:
        with open(os.path.join(ROOT, d["file"]), "rb") as f:
            meta["sha256"][os.path.basename(d["file"])] = hashlib.sha256(f.read()).hexdigest()
    with open(f"{record}/mixture.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def train(arm, seed, binary):
    if is_shipped_default(arm, seed):
        sys.exit(f"grl_vs_cl: {arm} seed {seed} is the shipped default model (adapters/default); nothing to train")
    name = run_name(arm, seed)
    top = os.path.join(ROOT, RUNS, name)
    cfg = arm_config(arm, seed)
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    config_path = f"{top}/config.yaml"
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(f"# {arm} arm of experiments/grl_vs_cl.py: {RECIPE} with {json.dumps(ARMS[arm])}, seed {seed}\n")
        yaml.safe_dump(cfg, f, sort_keys=False)
    print(f"+ {binary} train {config_path} --quiet", flush=True)
    subprocess.run([binary, "train", config_path, "--quiet"], check=True, cwd=ROOT)
    export(os.path.join(ROOT, cfg["output_dir"]), f"{top}/export")
    record = os.path.join(ROOT, RECORD, "runs", name)
    os.makedirs(record, exist_ok=True)
    shutil.copyfile(config_path, f"{record}/config.yaml")
    shutil.copyfile(os.path.join(ROOT, cfg["output_dir"], "log.jsonl"), f"{record}/log.jsonl")
    record_mixture(record)
    print(f"grl_vs_cl: {name} done; record in {RECORD}/runs/{name}, adapter {RUNS}/{name}/export", flush=True)


def recorded_seeds(arm):
    """The seeds of an arm with a finished run: the recipe's seed for CL (the shipped default) and every
    run recorded under docs/results/grl-vs-cl/runs."""
    seeds = [recipe()["seed"]] if arm == "CL" else []
    runs = os.path.join(ROOT, RECORD, "runs")
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        prefix = run_name(arm, "")
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            seeds.append(int(name[len(prefix):]))
    return sorted(set(seeds))


def saved(eval_dir, row, seed_index=0):
    return {"saved": {"dir": eval_dir, "system": row, "seed_index": seed_index}}


def previous_seeds(eval_dir, row):
    """{seed label: index} of the row's seeds in an earlier evaluation in eval_dir (none if absent)."""
    path = os.path.join(ROOT, eval_dir, "results.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    rows = [s for s in doc["systems"] if s["name"] == row]
    return {label: i for i, label in enumerate(rows[0]["seeds"])} if rows else {}


def systems_spec(out):
    systems = [{"name": n, "kind": k, **saved(DEFAULT_EVAL, n)}
               for n, k in (("base", "ullme"), ("MiniLM", "minilm"), ("BM25", "bm25"))]
    arms = []
    for arm in ARMS:
        seeds = recorded_seeds(arm)
        if not seeds:
            continue
        before = previous_seeds(out, arm)
        entries = []
        for s in seeds:
            if s in before:
                entries.append({"seed": s, **saved(out, arm, before[s])})
            elif is_shipped_default(arm, s):
                entries.append({"seed": s, **saved(DEFAULT_EVAL, DEFAULT_ROW)})
            elif os.path.isdir(os.path.join(ROOT, RUNS, run_name(arm, s), "export")):
                entries.append({"seed": s, "adapter": f"{RUNS}/{run_name(arm, s)}/export"})
            else:  # a record from another machine whose adapter (an ignored folder) did not come along
                print(f"grl_vs_cl: {arm} seed {s} left out of the evaluation: no saved results in {out} and no "
                      f"adapter in {RUNS}/{run_name(arm, s)}/export (train it again: train {arm} --seed {s})",
                      file=sys.stderr, flush=True)
        if not entries:
            continue
        systems.append({"name": arm, "kind": "ullme", "max_length": 256, "doc_instruction": True, "seeds": entries})
        arms.append(arm)
    compare = ([[a, "CL"] for a in arms if a != "CL"] + [[a, "GRL"] for a in arms if a.startswith("GRL-")]
               + [[a, "base"] for a in arms])
    return {"systems": systems, "compare": compare, "gap": {"models": arms, "base": "base", "reference": "MiniLM"}}


def evaluate(out):
    spec = systems_spec(out)
    os.makedirs(os.path.join(ROOT, out), exist_ok=True)
    spec_path = os.path.join(ROOT, RECORD, "systems.json")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    subprocess.run([sys.executable, "experiments/eval_suite.py", "--systems", os.path.relpath(spec_path, ROOT),
                    "--tasks", *TASKS, "--out", out, "--cache-dir", f"{RUNS}/eval-cache"], check=True, cwd=ROOT)


def run_logs():
    """{(arm, seed): [log records]} of every recorded run (CL at the recipe seed: the default model's log)."""
    logs = {}
    for arm in ARMS:
        for seed in recorded_seeds(arm):
            path = (os.path.join(ROOT, "docs/results/default-model/log.jsonl") if is_shipped_default(arm, seed)
                    else os.path.join(ROOT, RECORD, "runs", run_name(arm, seed), "log.jsonl"))
            with open(path, encoding="utf-8") as f:
                logs[(arm, seed)] = [r for r in map(json.loads, f) if "step" in r]
    return logs


def windows(values, width=20):
    return [sum(values[i:i + width]) / len(values[i:i + width]) for i in range(0, len(values), width)]


def report(out):
    """RECORD/README.md (runs, loss flattening, per-task verdicts) and RECORD/losses.png from the records."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    logs, r = run_logs(), recipe()
    lines = ["# GRL vs CL on the offline mixture", "",
             f"Generated by `python3 experiments/grl_vs_cl.py report` from `{RECORD}/runs/*/log.jsonl` (CL seed "
             f"{r['seed']}: the default model's, `docs/results/default-model/`) and `{out}/results.json`.", "",
             f"Every arm is `{RECIPE}` ({r['max_steps']} steps, batch {r['global_batch_size']} from one data set, "
             f"{r['max_seq_length']} tokens, LoRA r {r['loar_r']}, lr {r['learning_rate']:g}, {r['loss_type']} "
             f"T {r['temperature']}, seed {r['seed']} for CL) with only its loss keys changed: " + "; ".join(f"**{a}** {json.dumps(o) if o else '(the recipe)'}" for a, o in ARMS.items()) + ".",
             "", "## Runs", "",
             "| arm | seed | steps | minutes | s/step | CL loss, means of 20-step windows | gen (last 20) | KL (last 20) |",
             "|---|---|---|---|---|---|---|---|"]
    os.makedirs(os.path.join(ROOT, RECORD), exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (arm, seed), recs in sorted(logs.items()):
        cl = [r["cl"] for r in recs]
        secs = sum(r["seconds"] for r in recs)
        last = recs[-20:]
        lines.append(f"| {arm} | {seed} | {len(recs)} | {secs / 60:.0f} | {secs / len(recs):.1f} | "
                     + " → ".join(f"{w:.2f}" for w in windows(cl))
                     + f" | {sum(r['gen'] for r in last) / len(last):.3f} | {sum(r['kl'] for r in last) / len(last):.3f} |")
        smooth = [sum(cl[max(0, i - 9):i + 1]) / len(cl[max(0, i - 9):i + 1]) for i in range(len(cl))]
        ax.plot(range(1, len(cl) + 1), smooth, label=f"{arm} seed {seed}")
    ax.set_xlabel("step"); ax.set_ylabel("contrastive loss (10-step running mean)"); ax.legend(); ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, RECORD, "losses.png"), dpi=110)
    lines += ["", "Each batch comes from one data set, so the per-step loss moves with the data set; the 20-step "
              "windows show where it stops falling. `losses.png`: the contrastive loss of every run.", ""]
    results_path = os.path.join(ROOT, out, "results.json")
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            res = json.load(f)
        lines += ["## Verdicts (paired bootstrap over queries and seeds, 95 %)", "",
                  "| comparison | task | metric | A − B [95 % CI] | verdict |", "|---|---|---|---|---|"]
        for c in res["comparisons"]:
            for task, metrics in c["tasks"].items():
                metric = res["tasks"][task]["primary"]
                x = metrics[metric]
                lines.append(f"| {c['a']} vs {c['b']} | {task} | {metric} | {x['diff']:+.4f} "
                             f"[{x['ci'][0]:+.4f}, {x['ci'][1]:+.4f}] | {x['verdict']} |")
            if "retrieval_mean" in c:
                x = c["retrieval_mean"]
                lines.append(f"| {c['a']} vs {c['b']} | mean of retrieval tasks | nDCG@10 | {x['diff']:+.4f} "
                             f"[{x['ci'][0]:+.4f}, {x['ci'][1]:+.4f}] | {x['verdict']} |")
        lines += ["", "Every row with its CI: [`eval/table.md`](eval/table.md) (command and date there).", ""]
    with open(os.path.join(ROOT, RECORD, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"grl_vs_cl: wrote {RECORD}/README.md and {RECORD}/losses.png", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one arm at one seed, export and record it")
    t.add_argument("arm", choices=list(ARMS))
    t.add_argument("--seed", type=int, required=True)
    t.add_argument("--bin", default=os.path.join(ROOT, "build/bin/ullme"))
    e = sub.add_parser("eval", help="evaluate every recorded run")
    e.add_argument("--out", default=f"{RECORD}/eval")
    r = sub.add_parser("report", help="write the experiment's README (runs, verdicts) and loss plot")
    r.add_argument("--out", default=f"{RECORD}/eval")
    sub.add_parser("arms", help="print the arms and their overrides of the recipe")
    a = ap.parse_args()
    if a.command == "train":
        train(a.arm, a.seed, a.bin)
    elif a.command == "eval":
        evaluate(a.out)
    elif a.command == "report":
        report(a.out)
    else:
        for arm, over in ARMS.items():
            print(f"{arm:8} {json.dumps(over)}  seeds recorded: {recorded_seeds(arm)}")


if __name__ == "__main__":
    main()
