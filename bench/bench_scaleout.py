#!/usr/bin/env python3
"""Scale-out figures: corpus embedding on Ray with 1 vs 2 workers, and data-parallel GRL
over MPI with 1 process vs 2 ranks, on the real SmolLM2-135M-Instruct Q4_1 model. Writes a JSON record.

    python3 bench/bench_scaleout.py [--bin build/bin/ullme] [--out bench/results/scaleout-DATE.json]
Needs ray (pip install "ray[data]"), openmpi-bin + libopenmpi-dev, and libullme.so (ULLME_LIB or build/lib).
The machine's load average is recorded: other jobs running at the same time skew the figures.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bindings/python"))


def corpus(n):
    texts = []
    with open(REPO / "data/grl/wordnet-tiny/train.jsonl") as fh:
        for line in fh:
            r = json.loads(line)
            texts += [r["query"]] + r["positive"] + r["negative"]
            if len(texts) >= n:
                break
    return texts[:n]


def bench_ray(model, n, tmp):
    import ray
    import ullme
    import ullme.distributed as ud
    texts = corpus(n)
    src = Path(tmp) / "corpus.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    out = {"texts": n, "runs": []}
    for threads in (1, 2):  # single-process baseline
        with ullme.Model(model, threads=threads) as m:
            m.encode(texts[:8])
            t0 = time.perf_counter()
            m.encode(texts, is_query=False, batch_size=8)
            dt = time.perf_counter() - t0
        out["runs"].append({"mode": "Model.encode (1 process)", "threads": threads, "seconds": round(dt, 2),
                            "texts_per_s": round(n / dt, 1)})
    env = {"PYTHONPATH": str(REPO / "bindings/python"), "ULLME_LIB": ullme.library_path()}
    ray.init(num_cpus=2, runtime_env={"env_vars": env}, log_to_driver=False, include_dashboard=False)
    try:
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            d = Path(tmp) / f"ray-{workers}x{threads}"
            s = ud.embed_corpus(str(src), str(d), model=model, batch_size=8, num_workers=workers,
                                threads_per_worker=threads, shard_size=n // 8)
            out["runs"].append({"mode": "ray embed_corpus", "workers": workers, "threads_per_worker": threads,
                                "seconds": round(s["seconds"], 2), "texts_per_s": round(s["texts_per_s"], 1),
                                "busy_seconds": round(s["busy_seconds"], 2),
                                "note": "seconds: wall time with actor start-up and model load; busy_seconds: "
                                        "summed over shards"})
    finally:
        ray.shutdown()
    return out


CONFIG = """model: {model}
data:
  - name: wordnet-tiny
    file: {data}
    instruction: Given a sentence, retrieve the definition of the sense in which its word is used.
output_dir: {out}
max_seq_length: 128
pos_per_sample: 1
neg_per_sample: 1
loar_r: 16
lora_alpha: 32
dropout: 0.1
seed: 777
learning_rate: 2.0e-4
warmpup_proportion: 0.1
global_batch_size: {batch}
gc_chunk_size: {chunk}
max_steps: {steps}
checkpoint_interval: 1000
loss_type: NTXentLoss
temperature: 0.05
use_miner: true
is_distance: true
use_gen: true
gen_loss_type: sigmoid
beta: 0.1
use_kl: true
"""


def bench_mpi(binary, model, tmp, batch, chunk, steps):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    runs, logs = [], {}
    for name, ranks, threads in (("single-2t", 1, 2), ("single-1t", 1, 1), ("mpi-2x1t", 2, 1)):
        cfg = Path(tmp) / f"{name}.yaml"
        cfg.write_text(CONFIG.format(model=model, data=REPO / "data/grl/wordnet-tiny/train.jsonl",
                                     out=Path(tmp) / name, batch=batch, chunk=chunk, steps=steps))
        cmd = [binary, "train", str(cfg), "--quiet", "--threads", str(threads)]
        if ranks > 1:
            cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", str(ranks)] + cmd
        t0 = time.perf_counter()
        subprocess.run(cmd, env=dict(env, ULLME_MPI="0") if ranks == 1 else env, check=True, cwd=REPO,
                       capture_output=True)
        wall = time.perf_counter() - t0
        log = [json.loads(l) for l in (Path(tmp) / name / "log.jsonl").read_text().splitlines()]
        logs[name] = log
        per_step = [r["seconds"] for r in log]
        runs.append({"run": name, "ranks": ranks, "threads_per_rank": threads, "wall_s": round(wall, 1),
                     "step_s": round(sum(per_step) / len(per_step), 2),
                     "examples_per_s": round(batch / (sum(per_step) / len(per_step)), 2),
                     "tokens_per_s": round(sum(r["tokens"] for r in log) / sum(per_step), 1)})
    worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-30) for a, b in zip(logs["single-1t"], logs["mpi-2x1t"])
                for k in ("loss", "cl", "gen", "kl"))
    return {"global_batch": batch, "chunk": chunk, "steps": steps, "runs": runs,
            "max_loss_rel_diff_single_vs_mpi": worst}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "build/bin/ullme"))
    ap.add_argument("--model", default=str(Path(os.environ.get("ULLME_CACHE") or Path.home() / ".cache/ullme")
                                           / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--skip", choices=["ray", "mpi"])
    ap.add_argument("--out", default=str(REPO / f"bench/results/scaleout-{time.strftime('%Y-%m-%d')}.json"))
    a = ap.parse_args()
    rec = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
           "model": Path(a.model).name, "load_avg_before": os.getloadavg()}
    tmp = tempfile.mkdtemp(prefix="ullme-scaleout-")
    try:
        if a.skip != "ray":
            rec["ray"] = bench_ray(a.model, a.texts, tmp)
            print(json.dumps(rec["ray"], indent=1))
        if a.skip != "mpi":
            rec["mpi"] = bench_mpi(a.bin, a.model, tmp, a.batch, a.chunk, a.steps)
            print(json.dumps(rec["mpi"], indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rec["load_avg_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rec, indent=1) + "\n")
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
