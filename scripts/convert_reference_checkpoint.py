#!/usr/bin/env python3
"""Convert a training checkpoint of the PyTorch reference code into a PEFT LoRA adapter directory that
`ullme.Model(base, adapter=DIR)`, `ullme embed --adapter DIR` and PEFT itself load.

    python3 scripts/convert_reference_checkpoint.py lastest.ckpt OUT_DIR            # ULLME (nlp-uoregon/ullme)
    python3 scripts/convert_reference_checkpoint.py step_500.ckpt OUT_DIR           # GenC (hieum98/GenC)
        [--adapter NAME] [--lora-alpha 32] [--lora-dropout 0.1] [--base PATH] [--trust-pickle]

What the checkpoints hold (read from the two code bases; both save with Lightning Fabric, so the file is a
torch pickle of {"model": state_dict, "optimizer": ..., "scheduler": ..., step counters}):
- ULLME `lastest.ckpt`: the trainable tensors of the ULLME module: the PEFT-wrapped causal LM under
  `encoder.` (`encoder.base_model.model.model.layers.{i}.{module}.lora_A.{adapter}.weight`, adapter name
  `encoder_lora` in its configs) and the projection head `output_projection.{0,2}.{weight,bias}`
  (nn.Sequential(Linear, ReLU, Linear)), written here as projection_head.safetensors.
- GenC `step_N.ckpt` (and `final/model.ckpt`): every key containing "lora_" of its own LoRA wrapper around
  the EmbeddingLM (`model.model.layers.{i}.{module}.lora_A.{adapter}.weight`), with two adapters when it
  trained separate embedding and generation LoRAs (`emb_*`, `gen_*`); the embedding one is converted unless
  --adapter says otherwise. GenC has no projection head.
Neither file records lora_alpha (both code bases' configs use 32, the default here) nor the target list
(taken from the keys); r is read from the tensor shapes. Tensors are written in float32 (bf16 is exact in
float32). Only the tensors of the model are read: with the default `weights_only` loading no code in the
pickle runs; a file that needs more (an old Fabric scheduler object) is refused unless --trust-pickle.
"""
import argparse
import json
import os
import re
import sys

# {anything}layers.{i}.{module path}.lora_{A|B}[.{adapter}].weight
LORA_KEY = re.compile(r"^(?P<prefix>.*?)(?:^|\.)layers\.(?P<layer>\d+)\.(?P<module>.+?)\.lora_(?P<ab>[AB])"
                      r"(?:\.(?P<adapter>[^.]+))?\.weight$")
HEAD_PREFIX = "output_projection."
# Wrapper segments Fabric, FSDP, activation checkpointing and torch.compile may leave in key names.
WRAPPERS = re.compile(r"(?:^|(?<=\.))(?:_forward_module|_fsdp_wrapped_module|_checkpoint_wrapped_module|_orig_mod|module)\.")


class ConversionError(Exception):
    pass


def load_state_dict(path, trust_pickle=False):
    import pickle

    import torch
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file")
    except (pickle.UnpicklingError, RuntimeError) as e:
        if not trust_pickle:
            raise ConversionError(f"{path}: not loadable as plain tensors ({str(e).splitlines()[0]}); if you "
                                  "trust the file, pass --trust-pickle to unpickle it in full")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    sd = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not any(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConversionError(f"{path}: no state dict of tensors (expected a 'model' entry)")
    return {WRAPPERS.sub("", k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def split_adapters(sd):
    """{adapter name: {(layer, module): {"A": tensor, "B": tensor}}} of every LoRA key of the state dict."""
    adapters = {}
    for key, value in sd.items():
        m = LORA_KEY.match(key)
        if m:
            module = m["module"]
            slot = adapters.setdefault(m["adapter"] or "default", {}).setdefault((int(m["layer"]), module), {})
            slot[m["ab"]] = value
    if not adapters:
        raise ConversionError("the checkpoint has no LoRA tensors (keys like ...layers.0.self_attn.q_proj.lora_A...)")
    return adapters


def choose_adapter(adapters, wanted):
    names = sorted(adapters)
    if wanted:
        if wanted not in adapters:
            raise ConversionError(f"no adapter named {wanted!r} in the checkpoint (it has {names})")
        return wanted
    if len(names) == 1:
        return names[0]
    emb = [n for n in names if n.startswith("emb")]
    if len(emb) == 1:
        return emb[0]
    raise ConversionError(f"the checkpoint has several adapters {names}: pick one with --adapter")


def convert(ckpt_path, out, adapter=None, lora_alpha=32.0, lora_dropout=0.1, base=None, trust_pickle=False):
    """Writes OUT/adapter_config.json, OUT/adapter_model.safetensors (and OUT/projection_head.safetensors for
    an ULLME checkpoint). Returns a summary dict."""
    from safetensors.torch import save_file
    sd = load_state_dict(ckpt_path, trust_pickle)
    adapters = split_adapters(sd)
    name = choose_adapter(adapters, adapter)
    tensors, ranks, targets = {}, set(), set()
    for (layer, module), ab in sorted(adapters[name].items()):
        if set(ab) != {"A", "B"}:
            raise ConversionError(f"layer {layer} {module}: lora_A and lora_B must both be present (found {sorted(ab)})")
        a, b = ab["A"].float().contiguous(), ab["B"].float().contiguous()
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise ConversionError(f"layer {layer} {module}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} do not pair")
        ranks.add(a.shape[0])
        targets.add(module.split(".")[-1])
        stem = f"base_model.model.layers.{layer}.{module}"
        tensors[f"{stem}.lora_A.weight"], tensors[f"{stem}.lora_B.weight"] = a, b
    if len(ranks) != 1:
        raise ConversionError(f"adapter {name!r}: modules have different ranks {sorted(ranks)} (not supported)")
    r = ranks.pop()
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {"peft_type": "LORA", "task_type": "FEATURE_EXTRACTION", "r": r, "lora_alpha": lora_alpha,
              "lora_dropout": lora_dropout, "target_modules": sorted(targets), "bias": "none",
              "fan_in_fan_out": False, "use_rslora": False, "use_dora": False, "inference_mode": True,
              "init_lora_weights": True, "modules_to_save": None, "base_model_name_or_path": base}
    with open(os.path.join(out, "adapter_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    head = {k[len(HEAD_PREFIX):]: v.float().contiguous() for k, v in sd.items() if k.startswith(HEAD_PREFIX)}
    head_path = os.path.join(out, "projection_head.safetensors")
    if head:
        want = {"0.weight", "0.bias", "2.weight", "2.bias"}
        if set(head) != want:
            raise ConversionError(f"output_projection has {sorted(head)}, expected {sorted(want)}")
        save_file(head, head_path, metadata={"format": "pt"})
    elif os.path.exists(head_path):
        os.remove(head_path)
    layers = {layer for layer, _ in adapters[name]}
    return {"adapter": name, "other_adapters": sorted(set(adapters) - {name}), "r": r, "lora_alpha": lora_alpha,
            "target_modules": sorted(targets), "layers": len(layers), "tensors": len(tensors),
            "projection_head": bool(head), "dtype": str(next(iter(adapters[name].values()))["A"].dtype)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("checkpoint", help="lastest.ckpt (ULLME) or step_N.ckpt / model.ckpt (GenC)")
    ap.add_argument("out", help="the adapter directory to write")
    ap.add_argument("--adapter", help="which LoRA of the checkpoint (default: the only one, else the emb_* one)")
    ap.add_argument("--lora-alpha", type=float, default=32.0, help="the training config's lora_alpha (32)")
    ap.add_argument("--lora-dropout", type=float, default=0.1, help="recorded in adapter_config.json (0.1)")
    ap.add_argument("--base", help="base model path recorded as base_model_name_or_path")
    ap.add_argument("--trust-pickle", action="store_true", help="unpickle a file that holds more than tensors")
    a = ap.parse_args(argv)
    try:
        summary = convert(a.checkpoint, a.out, a.adapter, a.lora_alpha, a.lora_dropout, a.base, a.trust_pickle)
    except ConversionError as e:
        sys.exit(f"convert_reference_checkpoint: {e}")
    print(json.dumps(summary))
    print(f"convert_reference_checkpoint: wrote {a.out} (lora_alpha {a.lora_alpha:g} assumed: pass the training "
          "config's value if it was not 32)", file=sys.stderr)


if __name__ == "__main__":
    main()
