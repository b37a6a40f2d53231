#!/usr/bin/env python3
"""Data-parallel GRL over MPI equals a single-process run.

Runs `ullme train` on the tiny Llama fixture with the tiny WordNet set (CL + DPO + KL, GradCache) twice:
alone, and as `mpirun -np 2` (each rank half of the global batch), with the same config, global batch and
seed; then checks the logged losses of every step (<= 1e-5 relative) and the exported adapter + projection
head (<= 1e-4) agree, and that only rank 0 wrote the run directory.

    python3 scripts/check_mpi_grl.py [--bin build/bin/ullme] [--np 2] [--steps 10] [--out build/mpi-check]
Needs openmpi-bin (mpirun) and libopenmpi-dev's libmpi.so.40 (loaded by libullme at run time).
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

CONFIG = """# written by scripts/check_mpi_grl.py
model: {model}
data:
  - name: wordnet-tiny
    file: {data}
    instruction: Retrieve the definition.  # short: the tiny byte-level model has 128 positions
output_dir: {out}
max_seq_length: 128
pos_per_sample: 1
neg_per_sample: 1
loar_r: 4
lora_alpha: 8
dropout: 0.1
seed: 1234
learning_rate: 1.0e-3
min_learning_rate: 1.0e-7
warmpup_proportion: 0.1
global_batch_size: {batch}
gc_chunk_size: {chunk}
max_epochs: 1
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


def read_safetensors(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(info["shape"])
    return out


def run(cmd, env):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "build/bin/ullme"))
    ap.add_argument("--model", default=str(REPO / "Tests/fixtures/tiny-llama"))
    ap.add_argument("--data", default=str(REPO / "data/grl/wordnet-tiny/train.jsonl"))
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="libullme threads per rank (and for the single run)")
    ap.add_argument("--out", default=str(REPO / "build/mpi-check"))
    ap.add_argument("--loss-rtol", type=float, default=1e-5)
    ap.add_argument("--adapter-atol", type=float, default=1e-4)
    a = ap.parse_args()

    mpirun = shutil.which("mpirun")
    if not mpirun:
        sys.exit("mpirun not found: apt-get install openmpi-bin libopenmpi-dev")
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cfgs = {}
    for name in ("single", "mpi"):
        cfgs[name] = out / f"{name}.yaml"
        cfgs[name].write_text(CONFIG.format(model=a.model, data=a.data, out=out / name, batch=a.batch, chunk=a.chunk,
                                            steps=a.steps))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    env.pop("OMPI_COMM_WORLD_SIZE", None)
    t_single = run([a.bin, "train", str(cfgs["single"]), "--quiet", "--threads", str(a.threads)],
                   dict(env, ULLME_MPI="0"))
    t_mpi = run([mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", str(a.np),
                 a.bin, "train", str(cfgs["mpi"]), "--quiet", "--threads", str(a.threads)], env)

    def log(name):
        return [json.loads(l) for l in (out / name / "log.jsonl").read_text().splitlines() if l.strip()]

    single, mpi = log("single"), log("mpi")
    if len(single) != a.steps or len(mpi) != a.steps:
        sys.exit(f"FAIL: {len(single)} single and {len(mpi)} MPI log lines, expected {a.steps} each "
                 "(more MPI lines: ranks other than 0 wrote the log)")
    worst = 0.0
    for s, m in zip(single, mpi):
        if s["tokens"] != m["tokens"]:
            sys.exit(f"FAIL step {s['step']}: {s['tokens']} tokens alone, {m['tokens']} over MPI")
        for k in ("loss", "cl", "gen", "kl", "lr"):
            rel = abs(s[k] - m[k]) / max(abs(s[k]), 1e-30)
            worst = max(worst, rel)
            if rel > a.loss_rtol:
                sys.exit(f"FAIL step {s['step']} {k}: {s[k]} alone vs {m[k]} over MPI (relative {rel:.2e})")
    adiff, amax, n = 0.0, 0.0, 0
    for f in ("adapter_model.safetensors", "projection_head.safetensors"):
        ts, tm = read_safetensors(out / "single/adapter" / f), read_safetensors(out / "mpi/adapter" / f)
        if ts.keys() != tm.keys():
            sys.exit(f"FAIL: {f} tensors differ")
        for k in ts:
            adiff = max(adiff, float(np.abs(ts[k] - tm[k]).max()))
            amax = max(amax, float(np.abs(ts[k]).max()))
            n += ts[k].size
    if adiff > a.adapter_atol:
        sys.exit(f"FAIL: adapter/head differ by {adiff:.2e} (> {a.adapter_atol})")
    moved = float(np.abs(read_safetensors(out / "single/adapter/adapter_model.safetensors")
                         [next(k for k in read_safetensors(out / "single/adapter/adapter_model.safetensors") if "lora_B" in k)]).max())
    if moved == 0:
        sys.exit("FAIL: the adapter did not train (lora_B still zero)")
    summary = {"steps": a.steps, "ranks": a.np, "global_batch": a.batch, "chunk": a.chunk,
               "max_loss_rel_diff": worst, "max_adapter_abs_diff": adiff, "adapter_max_abs": amax, "parameters": n,
               "seconds_single": round(t_single, 2), "seconds_mpi": round(t_mpi, 2),
               "step_s_single": round(sum(r["seconds"] for r in single) / len(single), 4),
               "step_s_mpi": round(sum(r["seconds"] for r in mpi) / len(mpi), 4)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("MPI GRL check OK: " + json.dumps(summary))


if __name__ == "__main__":
    main()
