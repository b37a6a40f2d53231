#!/usr/bin/env python3
"""Train and export libullme's default embedding model (the adapter shipped in adapters/default/).

    python3 experiments/release_model.py            # `make release-model`: the full recipe (~1-2 h on 2 cores)
    python3 experiments/release_model.py --tiny     # CI: the same pipeline, 2 steps on a 32-line slice

1. `ullme train experiments/configs/default-model.yaml` (data: scripts/data/build_mixture.py, built first
   when missing) into the config's output_dir (build/release-model; --tiny: build/release-model-tiny);
2. the adapter exported for shipping: adapter_config.json as trained, adapter_model.safetensors in float16
   (half the bytes; rounding a trained LoRA to float16 moves embeddings by < 1e-5 in cosine, checked here),
   no projection head (it is used only inside the training losses) -> --dest (default adapters/default;
   --tiny: build/release-model-tiny/export);
3. reference embeddings of a few texts with the exported adapter, written next to it
   (reference-embeddings.json), which bindings/python/tests/test_default_model.py reproduces.
Training is deterministic on the same CPU kernel path, so the same config gives the same adapter.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings/python"))
CONFIG = os.path.join(ROOT, "experiments/configs/default-model.yaml")
REFERENCE_TEXTS = [  # (text, is_query, instruction)
    ("how do I list the files in a directory?", True,
     "Given a one-line summary of a Linux manual page, retrieve the page's description"),
    ("ls lists information about the FILEs (the current directory by default).", False,
     "Given a one-line summary of a Linux manual page, retrieve the page's description"),
    ("The lighthouse keeper lit the lamp.", True, ""),
    ("A loaf of bread is baked from flour, water, salt and yeast.", False, ""),
]


def run(cmd):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def tiny_config(cfg, out):
    """The recipe on a slice: 32 lines of each data set, 2 steps of batch 4, short sequences."""
    os.makedirs(f"{out}/data", exist_ok=True)
    for d in cfg["data"]:
        src = os.path.join(ROOT, d["file"])
        dst = f"{out}/data/{os.path.basename(src)}"
        with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
            g.writelines(l for _, l in zip(range(32), f))
        d["file"] = dst
    cfg.update(output_dir=f"{out}/run", max_steps=2, global_batch_size=4, max_seq_length=48, checkpoint_interval=2)
    return cfg


def export(run_dir, dest):
    from safetensors.numpy import load_file, save_file
    os.makedirs(dest, exist_ok=True)
    src = f"{run_dir}/adapter"
    shutil.copyfile(f"{src}/adapter_config.json", f"{dest}/adapter_config.json")
    tensors = load_file(f"{src}/adapter_model.safetensors")
    save_file({k: v.astype(np.float16) for k, v in tensors.items()}, f"{dest}/adapter_model.safetensors",
              metadata={"format": "pt"})
    for stale in ("projection_head.safetensors",):
        if os.path.exists(f"{dest}/{stale}"):
            os.remove(f"{dest}/{stale}")
    return src


def reference_embeddings(base, adapter_f32, dest):
    import ullme
    base = base or os.fspath(ullme.default_model_path())
    rows, worst = [], 1.0
    with ullme.Model(base, adapter=dest) as m16, ullme.Model(base, adapter=adapter_f32) as m32:
        for text, is_query, instr in REFERENCE_TEXTS:
            e16 = m16.encode([text], is_query=is_query, instruction=instr)[0]
            e32 = m32.encode([text], is_query=is_query, instruction=instr)[0]
            worst = min(worst, float(e16 @ e32))
            rows.append({"text": text, "is_query": is_query, "instruction": instr,
                         "embedding": [float(x) for x in e16]})
    if worst < 0.9999:
        sys.exit(f"release_model: float16 export moved an embedding to cosine {worst:.6f} of float32")
    with open(f"{dest}/reference-embeddings.json", "w", encoding="utf-8") as f:
        json.dump({"base": os.path.basename(base), "texts": rows}, f)
        f.write("\n")
    print(f"release_model: float16 vs float32 adapter, worst cosine {worst:.7f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--dest", help="export directory (default adapters/default; --tiny: under build/)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bin/ullme"))
    ap.add_argument("--skip-train", action="store_true", help="export the finished run of the config again")
    a = ap.parse_args()
    with open(CONFIG, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    if not a.skip_train and not all(os.path.exists(os.path.join(ROOT, d["file"])) for d in cfg["data"]):
        run([sys.executable, "scripts/data/build_mixture.py"])
    config_path = CONFIG
    if a.tiny:
        out = os.path.join(ROOT, "build/release-model-tiny")
        shutil.rmtree(out, ignore_errors=True)
        cfg = tiny_config(cfg, out)
        config_path = f"{out}/config.yaml"
        with open(config_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
    run_dir = os.path.join(ROOT, cfg["output_dir"])
    if not a.skip_train:
        shutil.rmtree(run_dir, ignore_errors=True)
        run([a.bin, "train", config_path, "--quiet"])
    dest = a.dest or (os.path.join(run_dir, "..", "export") if a.tiny else os.path.join(ROOT, "adapters/default"))
    adapter_f32 = export(run_dir, dest)
    reference_embeddings(cfg.get("model"), adapter_f32, dest)
    size = os.path.getsize(f"{dest}/adapter_model.safetensors")
    print(f"release_model: {dest}: adapter_model.safetensors {size / 1e6:.1f} MB", flush=True)
    if size > 15e6:
        sys.exit("release_model: the adapter is over 15 MB")


if __name__ == "__main__":
    main()
