#!/usr/bin/env python3
"""PEFT LoRA adapter fixtures: Tests/fixtures/peft-adapters/<model>/ (AdapterTests.testPEFTFixture*).

For each tiny model, builds a PEFT LoRA adapter (torch + peft; checked with peft 0.21.2, torch 2.13,
transformers 5.24) on `AutoModel` (the decoder without LM head, task_type FEATURE_EXTRACTION, what an
embedding model loads), fills A and B with seeded non-zero values, saves it with `save_pretrained`, and
writes expected.json: token id sequences, their mean-pooled bidirectional embeddings with the adapter
(and without it, to show the adapter matters), as docs/families.md defines bidirectional: a right-padded batch
with a 4-D additive mask (0 for real keys, finfo.min for padding), eager attention, float32.

  tiny-llama: every linear (q,k,v,o,gate,up,down), r=4, alpha=8, dropout 0.1, plus
              projection_head.safetensors (nn.Sequential(Linear, ReLU, Linear) state_dict) and the
              normalised projected embeddings.
  tiny-phi3:  qkv_proj, o_proj, gate_up_proj only (down_proj has no adapter), r=2, alpha=4, use_rslora
              (scale alpha/sqrt(r)).

The file is reloaded with PeftModel.from_pretrained(AutoModel...) and checked to give the same embeddings.
Deterministic: fixed seeds, one thread. Run from the repo root: python3 scripts/make_adapter_fixtures.py
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModel

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests" / "fixtures"
OUT = FIX / "peft-adapters"
LENGTHS = [7, 12, 3]
PAD_ID = 0

SPECS = {
    "tiny-llama": dict(targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                       r=4, alpha=8, dropout=0.1, rslora=False, head=True, seed=11),
    "tiny-phi3": dict(targets=["qkv_proj", "o_proj", "gate_up_proj"], r=2, alpha=4, dropout=0.0, rslora=True,
                      head=False, seed=12),
}


def load_base(name):
    return AutoModel.from_pretrained(FIX / name, dtype=torch.float32, attn_implementation="eager").eval()


def make_batch(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    L = max(LENGTHS)
    ids = torch.full((len(LENGTHS), L), PAD_ID, dtype=torch.long)
    attn = torch.zeros(len(LENGTHS), L, dtype=torch.long)
    seqs = []
    for b, n in enumerate(LENGTHS):
        s = torch.randint(3, vocab, (n,), generator=g)
        ids[b, :n] = s
        attn[b, :n] = 1
        seqs.append(s.tolist())
    return ids, attn, seqs


def bidir_mask(attn2d):
    """(B,L) 0/1 -> (B,1,L,L) additive float mask: 0 for real keys, finfo.min for padded keys."""
    B, L = attn2d.shape
    neg = torch.finfo(torch.float32).min
    keys = torch.where(attn2d.bool(), torch.tensor(0.0), torch.tensor(neg))
    return keys[:, None, None, :].expand(B, 1, L, L).contiguous()


def mean_pooled(model, ids, attn):
    """Mean of the final-norm hidden states over real tokens, bidirectional (4-D mask)."""
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=bidir_mask(attn)).last_hidden_state
    m = attn[..., None].float()
    return (h * m).sum(1) / m.sum(1)


def make(name, spec):
    torch.manual_seed(spec["seed"])
    base = load_base(name)
    ids, attn, seqs = make_batch(base.config.vocab_size, spec["seed"])
    plain = mean_pooled(base, ids, attn)
    cfg = LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], lora_dropout=spec["dropout"],
                     target_modules=spec["targets"], use_rslora=spec["rslora"], bias="none",
                     task_type="FEATURE_EXTRACTION")
    pm = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(spec["seed"] + 100)
    n = 0
    with torch.no_grad():
        for key, p in pm.named_parameters():
            if "lora_A" in key or "lora_B" in key:
                p.copy_(torch.randn(p.shape, generator=g) * 0.15)
                n += 1
    assert n == 2 * len(spec["targets"]) * base.config.num_hidden_layers, n
    pm.eval()
    adapted = mean_pooled(pm, ids, attn)
    delta = (adapted - plain).abs().max().item()
    assert delta > 0.05, f"{name}: adapter changes embeddings by only {delta}"

    out = OUT / name
    if out.exists():
        shutil.rmtree(out)
    pm.save_pretrained(out)
    (out / "README.md").unlink(missing_ok=True)  # PEFT's model-card boilerplate
    cfg_path = out / "adapter_config.json"  # no machine-specific absolute path in a committed fixture
    cj = json.loads(cfg_path.read_text())
    cj["base_model_name_or_path"] = f"Tests/fixtures/{name}"
    cfg_path.write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")

    # Reload exactly as a user would and check the file reproduces the embeddings.
    re = PeftModel.from_pretrained(load_base(name), out).eval()
    again = mean_pooled(re, ids, attn)
    assert (again - adapted).abs().max().item() < 1e-6, f"{name}: reloaded adapter differs"

    exp = {"model": name, "ids": seqs, "r": spec["r"], "lora_alpha": spec["alpha"], "use_rslora": spec["rslora"],
           "targets": spec["targets"], "mean_pooled": adapted.tolist(), "mean_pooled_base": plain.tolist()}
    if spec["head"]:
        d = base.config.hidden_size
        head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), torch.nn.Linear(d, d))
        save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(out / "projection_head.safetensors"),
                  metadata={"format": "pt"})
        with torch.no_grad():
            exp["projected"] = torch.nn.functional.normalize(head(adapted), p=2, dim=-1).tolist()
    (out / "expected.json").write_text(json.dumps(exp, separators=(",", ":")) + "\n")
    print(f"{name}: {out.relative_to(ROOT)} ({n} LoRA tensors, adapter moves embeddings by up to {delta:.3f})")


def main():
    torch.set_num_threads(1)
    for name, spec in SPECS.items():
        make(name, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
