#!/usr/bin/env python3
"""Reference LoRA + projection-head gradients for the training engine, computed with transformers + PEFT (float32).

Deterministic: fixed seeds, torch.set_num_threads(1), eager attention, float32, model.eval() (no dropout anywhere).
Reads the tiny models made by scripts/make_parity_fixtures.py and scripts/make_family_fixtures.py:

  tiny-llama tiny-llama-rope tiny-mistral tiny-qwen2 tiny-qwen2-swa tiny-qwen3 tiny-phi tiny-phi3 tiny-phi3-longrope
  tiny-gemma2 tiny-gemma3          (Tests/fixtures/<fixture>/{config.json, model.safetensors, expected.json})

and writes, for each, Tests/fixtures/lora-grads/<fixture>/:

  adapter.safetensors   the LoRA weights used (float32), PEFT state-dict keys and shapes, i.e. exactly the tensors of
                        PEFT's own adapter_model.safetensors (the script checks this key for key):
                            base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_A.weight   [r, in]
                            base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_B.weight   [out, r]
                        e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight  [4, 64]
                             base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight  [64, 4]
                             base_model.model.model.layers.1.mlp.down_proj.lora_A.weight     [4, 128]
                        (no adapter name "default" in the keys; the module path after `base_model.model.` is the
                        transformers module path, so `model.layers.0.self_attn.q_proj` is the frozen weight
                        `model.layers.0.self_attn.q_proj.weight` of model.safetensors)
  adapter_config.json   PEFT's LoraConfig as PEFT's save_pretrained writes it (base_model_name_or_path rewritten to
                        the relative fixture path). To load with PEFT, copy adapter.safetensors to
                        adapter_model.safetensors next to it.
  head.safetensors      the projection head proj = Sequential(Linear(d,d), ReLU(), Linear(d,d)), nn.Sequential
                        state-dict keys:  0.weight [d,d], 0.bias [d]  (first Linear),  2.weight [d,d], 2.bias [d]
                        (second Linear; index 1 is the ReLU). Weights [out, in], y = x @ W.T + b.
                        = ProjectionHead.swift w1, b1, w2, b2.
  grads.safetensors     gradients, float32, key = "<objective>/<parameter key>":
                            <objective>/base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight  (LoRA: the
                                 adapter.safetensors key, same shape)
                            <objective>/head.0.weight, <objective>/head.0.bias, <objective>/head.2.weight,
                            <objective>/head.2.bias  (head: "head." + the head.safetensors key; embedding objectives
                                 only)
  expected.json         ids, lengths, pad_id, G, LoRA config, key lists with shapes, and per objective the loss,
                        the pooled vectors and reps (embedding objectives), max |grad| and a float64 cross-check.

LoRA (PEFT 0.21 lora.Linear, as Sources/ULLMESwift/Train/LoRA.swift):
  LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", target_modules=<family's linears>), so
      y = W x (+ b) + scale * B (A x),   scale = lora_alpha / r = 8 / 4 = 2  (not rslora), dropout 0 (identity).
  Base weights (incl. every bias, norm, embedding, lm_head) are frozen; only A and B get gradients.
  Targets:  llama, mistral, qwen2, qwen3, gemma2, gemma3: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
            phi:  self_attn.{q_proj,k_proj,v_proj,dense}, mlp.{fc1,fc2}
            phi3: self_attn.{qkv_proj,o_proj}, mlp.{gate_up_proj,down_proj}. As PEFT does, ONE adapter sits on the
                  FUSED Linear: qkv_proj has A [r, hidden], B [nh*hd + 2*nkv*hd, r] (= [4,64] and [128,4] here) and
                  its LoRA output is added to the fused output BEFORE the [q | k | v] split; gate_up_proj has
                  A [r, hidden], B [2*intermediate, r] (= [4,64], [256,4]), added before the [gate | up] split.
  Values: A ~ N(0, 0.1), B ~ N(0, 0.05) (B is NOT zero, otherwise dL/dA = 0), drawn from a torch.Generator seeded
  with 1000 + crc32(fixture name) % 100000, over the LoRA modules in PEFT state-dict key order (sorted), A then B.
  Head: torch.manual_seed(2000 + same) then nn.Sequential(Linear, ReLU, Linear) with PyTorch's default init
  (U(-1/sqrt(d), 1/sqrt(d)) for weights and biases); then, so that no ReLU sits on its kink (which would make the
  head gradients fragile to tiny forward differences), each first-layer bias b1[j] whose pre-activation
  (W1 pooled + b1)[j] comes within 0.01 of 0 for any row of any embedding objective is shifted by the smallest
  multiple of 0.005 that moves all of them >= 0.01 away (expected.json head.b1_nudged_units lists the units; the stored
  head.safetensors has the final values, nothing needs redoing on the engine side). G [3, d] ~ N(0, 1) from seed 3000 + same; stored in expected.json.

Inputs: the batch of Tests/fixtures/<fixture>/expected.json: 3 sequences of lengths 7, 12, 3 (ids there), right
padded with pad id 0 to L = 12; attention_mask (2-D) = 1 on real tokens, 0 on padding.

Objectives ("<objective>" names):
  embed_mean   (every fixture)  GradCache surrogate of the embedding loss:
        hidden = the decoder's last_hidden_state (after the final norm; model.model(...), no lm_head) run with
                 BIDIRECTIONAL attention given as a 4-D additive mask (B,1,L,L): 0 for real keys, finfo(float32).min
                 for padded keys. Every layer, sliding or not, sees every real token (no window; docs/families.md).
        pooled = masked MEAN over the real tokens of each sequence: sum_t m_t h_t / sum_t m_t
        reps   = F.normalize(proj(pooled), p=2, dim=-1, eps=1e-12)      (head on the UNNORMALISED pooled vector)
        loss_a = sum(reps * G)   (sum over all 3 x d entries; dL/dreps = G, the GradCache cache)
  tiny-llama only, same loss with another pooling (docs/method.md §1; weights only over real tokens):
    embed_weightedmean  pooled = sum_t w_t h_t / sum_t w_t,  w_t = t+1 (1-based position: mask * cumsum(mask))
    embed_cls           pooled = h_0 (first token)
    embed_lasttoken     pooled = h_{n-1} (last real token)
    embed_mean_causal   mean pooling, but the decoder runs with ordinary CAUSAL attention (the 2-D mask)
  lm  (every fixture)  causal LM loss, no head:
        labels = ids with padding positions set to -100;  loss_b = model(input_ids, attention_mask (2-D), labels).loss
        i.e. HF ForCausalLMLoss: logits (after final soft-capping where the family has it) at position t are scored
        against label t+1 (labels shifted left by one, a -100 appended at the end, so the last real token of each
        sequence and every padded position predict nothing); cross_entropy(reduction="mean", ignore_index=-100):
        loss_b = (sum over the (7-1)+(12-1)+(3-1) = 19 scored positions of -log softmax(logits_t)[ids_{t+1}]) / 19,
        one mean over the whole batch (not a mean of per-sequence means). Causal attention follows each family's
        rules (sliding windows included, see docs/families.md).

tiny-phi3-longrope: like its expected.json ("per_sequence": true) every sequence is run ALONE (batch of 1, no
padding) so that longrope picks short/long factors by the sequence's own length (7, 3 short; 12 long). The losses
are assembled exactly as above (reps stacked; lm = summed token CE / 19). For every other fixture the script checks
that running the sequences alone gives the same losses and gradients as the padded batch (rel. diff < 1e-5).

Checks (asserted): every LoRA A and B and every head parameter has a non-zero gradient in every objective where it
takes part; loss_b equals a hand-written shifted CE; adapter.safetensors has exactly PEFT's saved keys and values;
LoRA module count = layers x targets; a plain transformers model (no PEFT) whose target weights are W + 2 B A gives
the same loss and, through dL/dA = 2 B^T dL/dW, dL/dB = 2 dL/dW A^T, the same A/B gradients (rel. < 1e-4; stored as
merged_weight_check_max_rel_diff). Reported (and stored in expected.json as f64_max_rel_diff): the same
computation in float64 (model and head cast to double, each sequence run alone), max over tensors of max|g32 - g64| / max|g64|; and
head_min_abs_preact = min |first Linear output| over the batch (a value near 0 would make the ReLU kink fragile).

Sizes: < 0.5 MB per fixture. Floats in JSON have 9 significant digits (exact float32 round trip).
Usage: python3 scripts/make_lora_grad_fixtures.py [--only tiny-llama,tiny-phi3]   (needs `pip install peft`)
"""
import argparse
import copy
import json
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_parity_fixtures import FIX, dump, f32list  # noqa: E402

OUT = FIX / "lora-grads"
FIXTURES = ["tiny-llama", "tiny-llama-rope", "tiny-mistral", "tiny-qwen2", "tiny-qwen2-swa", "tiny-qwen3", "tiny-phi", "tiny-phi3",
            "tiny-phi3-longrope", "tiny-gemma2", "tiny-gemma3"]
LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGETS = {"llama": LLAMA_TARGETS, "mistral": LLAMA_TARGETS, "qwen2": LLAMA_TARGETS, "qwen3": LLAMA_TARGETS, "gemma2": LLAMA_TARGETS,
           "gemma3_text": LLAMA_TARGETS,
           "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
           "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]}
R, ALPHA = 4, 8
A_STD, B_STD = 0.1, 0.05
HEAD_MARGIN = 0.01  # every first-layer pre-activation of the head is at least this far from the ReLU kink
# (objective, pooling, bidirectional); the extras only for tiny-llama
EMBED_ALL = [("embed_mean", "mean", True)]
EMBED_LLAMA = [("embed_weightedmean", "weightedmean", True), ("embed_cls", "cls", True),
               ("embed_lasttoken", "lasttoken", True), ("embed_mean_causal", "mean", False)]


def seed_of(name):
    return zlib.crc32(name.encode()) % 100000


def add_mask_4d(attn, dtype):
    """(B,L) 0/1 -> (B,1,L,L) additive mask: 0 for real keys, finfo.min for padded keys (every query row)."""
    B, L = attn.shape
    neg = torch.finfo(dtype).min
    keys = torch.where(attn.bool(), torch.tensor(0.0, dtype=dtype), torch.tensor(neg, dtype=dtype))
    return keys[:, None, None, :].expand(B, 1, L, L).contiguous()


def pool(h, attn, pooling):
    """h (B,L,d), attn (B,L) 0/1 right padded -> (B,d)."""
    m = attn.to(h.dtype)
    if pooling == "mean":
        return (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    if pooling == "weightedmean":
        w = m * torch.cumsum(m, dim=1)  # 1, 2, ..., n on real tokens, 0 on padding
        return (h * w[..., None]).sum(1) / w.sum(1, keepdim=True)
    if pooling == "cls":
        return h[:, 0]
    if pooling == "lasttoken":
        last = attn.sum(1) - 1
        return h[torch.arange(h.shape[0]), last]
    raise ValueError(pooling)


def decoder(pm):
    base = pm.get_base_model() if hasattr(pm, "get_base_model") else pm
    return base.model  # LlamaModel / PhiModel / Gemma3TextModel ... (ends with the final norm)


def pooled_of(pm, ids, attn, pooling, bidirectional, per_seq, dtype):
    dec = decoder(pm)
    if per_seq:  # each sequence alone, no padding; pooled rows stacked
        rows = []
        for b in range(ids.shape[0]):
            n = int(attn[b].sum())
            x, a = ids[b:b + 1, :n], attn[b:b + 1, :n]
            mask = add_mask_4d(a, dtype) if bidirectional else a
            h = dec(input_ids=x, attention_mask=mask).last_hidden_state
            rows.append(pool(h, a, pooling))
        return torch.cat(rows, 0)
    mask = add_mask_4d(attn, dtype) if bidirectional else attn
    h = dec(input_ids=ids, attention_mask=mask).last_hidden_state
    return pool(h, attn, pooling)


def embed_loss(pm, head, G, ids, attn, pooling, bidirectional, per_seq):
    pooled = pooled_of(pm, ids, attn, pooling, bidirectional, per_seq, G.dtype)
    pre = head[0](pooled)
    z = head(pooled)
    reps = F.normalize(z, p=2, dim=-1, eps=1e-12)
    return (reps * G).sum(), {"pooled": pooled.detach(), "reps": reps.detach(), "preact": pre.detach()}


def nudge_head_bias(pm, head, ids, attn, embed_objs, per_seq, margin):
    """Shift b1[j] (first Linear bias) by the smallest multiple of margin/2 that keeps every pre-activation of unit j
    (all rows of all embedding objectives) at least `margin` away from 0, so that no ReLU sits on its kink.
    Returns the list of shifted units."""
    with torch.no_grad():
        pre = torch.cat([head[0](pooled_of(pm, ids, attn, o[1], o[2], per_seq, torch.float32)) for o in embed_objs])
        shifted = []
        for j in range(pre.shape[1]):
            v = pre[:, j]
            if float(v.abs().min()) >= margin:
                continue
            for k in range(1, 10000):
                s = next((c for c in (k * margin / 2, -k * margin / 2) if float((v + c).abs().min()) >= margin), None)
                if s is not None:
                    break
            head[0].bias[j] += s
            shifted.append(j)
        pre = torch.cat([head[0](pooled_of(pm, ids, attn, o[1], o[2], per_seq, torch.float32)) for o in embed_objs])
        assert float(pre.abs().min()) >= margin * 0.999
    return shifted


def shifted_ce_sum(logits, labels):
    """Sum over scored positions of -log softmax(logits_t)[label_{t+1}] (labels shifted left, -100 appended);
    float32 logits are used as is (as HF upcasts), float64 ones stay float64."""
    lg = logits if logits.dtype == torch.float64 else logits.float()
    tgt = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], 1)
    ok = tgt != -100
    lp = torch.log_softmax(lg, -1)
    return -(lp[ok].gather(-1, tgt[ok][:, None])).sum(), int(ok.sum())


def lm_loss(pm, ids, attn, per_seq):
    """HF's model(input_ids, attention_mask, labels).loss (float32 models; checked against shifted_ce_sum), or the
    hand-written CE in float64 for the float64 cross-check (HF would round float64 logits to float32)."""
    labels = ids.masked_fill(attn == 0, -100)
    parts = [(ids, attn, labels)] if not per_seq else \
        [(ids[b:b + 1, :n], attn[b:b + 1, :n], labels[b:b + 1, :n])
         for b, n in enumerate(int(x) for x in attn.sum(1))]
    hf_total, man_total, count = 0.0, 0.0, 0
    for x, a, lab in parts:
        out = pm(input_ids=x, attention_mask=a, labels=lab)
        man, k = shifted_ce_sum(out.logits, lab)
        hf_total = hf_total + out.loss * k  # HF: mean over the k scored tokens of this call -> sum
        man_total = man_total + man
        count += k
    hf, man = hf_total / count, man_total / count
    assert abs(float((hf - man).detach())) < 1e-5 * max(1.0, abs(float(hf.detach())))
    return (man if man.dtype == torch.float64 else hf), {"n_scored": count}


def lora_params(pm):
    """{PEFT state-dict key: parameter} in sorted key order."""
    out = {}
    for n, p in pm.named_parameters():
        if "lora_" in n:
            out[n.replace(".default.", ".")] = p
    return dict(sorted(out.items()))


def run_objective(pm, head, G, ids, attn, obj, per_seq):
    pm.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    name = obj[0]
    if name == "lm":
        loss, aux = lm_loss(pm, ids, attn, per_seq)
    else:
        loss, aux = embed_loss(pm, head, G, ids, attn, obj[1], obj[2], per_seq)
    loss.backward()
    grads = {}
    for k, p in lora_params(pm).items():
        assert p.grad is not None, f"{name}: no grad for {k}"
        grads[f"{name}/{k}"] = p.grad.detach().clone()
    if name != "lm":
        for k, p in head.state_dict(keep_vars=True).items():
            grads[f"{name}/head.{k}"] = p.grad.detach().clone()
    return float(loss.detach()), aux, grads


def merged_check(src, lp, head, G, ids, attn, obj, per_seq, grads_peft):
    """Independent check of the LoRA convention without PEFT: a plain model whose target weights are
    W' = W + (alpha/r) B A gives the same loss, and dL/dA = scale B^T dL/dW', dL/dB = scale dL/dW' A^T."""
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    for p in m.parameters():
        p.requires_grad_(False)
    scale = ALPHA / R
    mods = {}
    with torch.no_grad():
        for k in lp:
            if ".lora_A." in k:
                path = k[len("base_model.model."):-len(".lora_A.weight")]
                A, B = lp[k].detach(), lp[k.replace(".lora_A.", ".lora_B.")].detach()
                W = m.get_submodule(path).weight
                W += scale * B @ A
                W.requires_grad_(True)
                mods[path] = (W, A, B)
    head.zero_grad(set_to_none=True)
    name = obj[0]
    if name == "lm":
        loss, _ = lm_loss(m, ids, attn, per_seq)
    else:
        loss, _ = embed_loss(m, head, G, ids, attn, obj[1], obj[2], per_seq)
    loss.backward()
    derived = {}
    for path, (W, A, B) in mods.items():
        derived[f"{name}/base_model.model.{path}.lora_A.weight"] = scale * B.T @ W.grad
        derived[f"{name}/base_model.model.{path}.lora_B.weight"] = scale * W.grad @ A.T
    if name != "lm":
        for k, p in head.state_dict(keep_vars=True).items():
            derived[f"{name}/head.{k}"] = p.grad.detach().clone()
    assert sorted(derived) == sorted(grads_peft)
    return float(loss.detach()), rel_diff(derived, grads_peft)


def rel_diff(ga, gb):
    return max(float((ga[k].double() - gb[k].double()).abs().max()) / max(float(gb[k].abs().max()), 1e-30)
               for k in ga)


def make(fixture, summary):
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    src = FIX / fixture
    exp_src = json.loads((src / "expected.json").read_text())
    per_seq = bool(exp_src.get("per_sequence", False))
    lengths, pad_id = exp_src["lengths"], exp_src["pad_id"]
    L = max(lengths)
    ids = torch.full((len(lengths), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(lengths), L), dtype=torch.long)
    for b, s in enumerate(exp_src["ids"]):
        assert len(s) == lengths[b]
        ids[b, :len(s)] = torch.tensor(s)
        attn[b, :len(s)] = 1

    base = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    mt = base.config.model_type
    d = base.config.hidden_size
    targets = TARGETS[mt]
    cfg = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(targets), bias="none",
                     task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg).eval()
    lp = lora_params(pm)
    n_layers = base.config.num_hidden_layers
    assert len(lp) == 2 * n_layers * len(targets), f"{fixture}: {len(lp)} LoRA tensors"
    for mod in pm.modules():
        if hasattr(mod, "scaling") and isinstance(mod.scaling, dict) and "default" in mod.scaling:
            assert mod.scaling["default"] == ALPHA / R
    assert all(not p.requires_grad for n, p in pm.named_parameters() if "lora_" not in n)

    s = seed_of(fixture)
    g = torch.Generator().manual_seed(1000 + s)
    with torch.no_grad():
        for k, p in lp.items():  # sorted keys: ...lora_A.weight before ...lora_B.weight of the same module
            std = A_STD if ".lora_A." in k else B_STD
            p.copy_(torch.randn(p.shape, generator=g) * std)
    torch.manual_seed(2000 + s)
    head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), torch.nn.Linear(d, d)).float()
    G = torch.randn(len(lengths), d, generator=torch.Generator().manual_seed(3000 + s))

    embed_objs = list(EMBED_ALL) + (EMBED_LLAMA if fixture == "tiny-llama" else [])
    objectives = embed_objs + [("lm", None, None)]
    nudged = nudge_head_bias(pm, head, ids, attn, embed_objs, per_seq, HEAD_MARGIN)

    # float64 twin for the precision cross-check
    pm64 = copy.deepcopy(pm).double()
    head64 = copy.deepcopy(head).double()

    results, all_grads, info = {}, {}, []
    for obj in objectives:
        name = obj[0]
        loss, aux, grads = run_objective(pm, head, G, ids, attn, obj, per_seq)
        # sanity: every A, B (and head parameter) has a non-zero gradient
        zero = [k for k, v in grads.items() if float(v.abs().max()) == 0.0]
        assert not zero, f"{fixture}/{name}: zero gradients {zero[:4]}"
        # float64: each sequence alone (a right-padded float64 batch is not usable as a reference: under a causal
        # sliding window the padded query rows of a short sequence see no key at all, give NaN in float64, and
        # 0 * NaN then reaches the real rows of the next layer)
        loss64, _, grads64 = run_objective(pm64, head64, G.double(), ids, attn, obj, True)
        rd = rel_diff(grads, grads64)
        if not per_seq:  # padded batch == each sequence alone
            loss_s, _, grads_s = run_objective(pm, head, G, ids, attn, obj, True)
            rd_s = rel_diff(grads_s, grads)
            assert abs(loss_s - loss) <= 1e-5 * max(1.0, abs(loss)) and rd_s < 1e-5, \
                f"{fixture}/{name}: batch vs alone loss {loss} {loss_s}, grads {rd_s}"
        loss_m, rd_m = merged_check(src, lp, head, G, ids, attn, obj, per_seq, grads)
        assert abs(loss_m - loss) <= 1e-5 * max(1.0, abs(loss)) and rd_m < 1e-4, \
            f"{fixture}/{name}: merged-weight check loss {loss} {loss_m}, grads {rd_m}"
        la = [v for k, v in grads.items() if ".lora_A." in k]
        lb = [v for k, v in grads.items() if ".lora_B." in k]
        hg = [v for k, v in grads.items() if "/head." in k]
        r = {"loss": f32list(loss), "loss_f64": float(loss64),
             "max_abs_grad_lora_A": f32list(max(float(v.abs().max()) for v in la)),
             "max_abs_grad_lora_B": f32list(max(float(v.abs().max()) for v in lb)),
             "min_over_tensors_max_abs_grad": f32list(min(float(v.abs().max()) for v in grads.values())),
             "f64_max_rel_diff": float(f"{rd:.3g}"), "merged_weight_check_max_rel_diff": float(f"{rd_m:.3g}")}
        if name == "lm":
            r.update({"attention": "causal (2-D mask)", "n_scored_tokens": aux["n_scored"],
                      "reduction": "mean over all scored tokens of the batch"})
        else:
            r.update({"pooling": obj[1], "attention": "bidirectional (4-D additive mask)" if obj[2] else
                      "causal (2-D mask)",
                      "max_abs_grad_head": f32list(max(float(v.abs().max()) for v in hg)),
                      "head_min_abs_preact": float(f"{float(aux['preact'].abs().min()):.3g}"),
                      "pooled": f32list(aux["pooled"]), "reps": f32list(aux["reps"])})
        results[name] = r
        all_grads.update(grads)
        extra = f", head {r['max_abs_grad_head']:.3g}, min|preact| {r['head_min_abs_preact']:.2g}" if name != "lm" else ""
        info.append(f"{name}: loss {loss:.6g}, max|g| A {r['max_abs_grad_lora_A']:.3g} B {r['max_abs_grad_lora_B']:.3g}"
                    f"{extra}; smallest tensor max|g| {r['min_over_tensors_max_abs_grad']:.2g}; f32 vs f64 {rd:.1e}; "
                    f"vs merged W+2BA {rd_m:.1e}")

    # write
    out = OUT / fixture
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    adapter = {k: p.detach().clone().contiguous() for k, p in lp.items()}
    save_file(adapter, out / "adapter.safetensors", metadata={"format": "pt"})
    save_file({k: v.detach().clone().contiguous() for k, v in head.state_dict().items()}, out / "head.safetensors",
              metadata={"format": "pt"})
    save_file({k: v.contiguous() for k, v in sorted(all_grads.items())}, out / "grads.safetensors",
              metadata={"format": "pt"})
    # PEFT's own save: same keys/values; keep its adapter_config.json
    with tempfile.TemporaryDirectory() as tmp:
        pm.save_pretrained(tmp)
        peft_sd = load_file(Path(tmp) / "adapter_model.safetensors")
        ours = get_peft_model_state_dict(pm)
        assert sorted(peft_sd) == sorted(adapter) == sorted(ours), f"{fixture}: key mismatch with PEFT's save"
        assert all(torch.equal(peft_sd[k], adapter[k]) for k in adapter)
        ac = json.loads((Path(tmp) / "adapter_config.json").read_text())
    ac["base_model_name_or_path"] = f"Tests/fixtures/{fixture}"
    ac["target_modules"] = sorted(ac["target_modules"])  # PEFT writes a set in hash order
    (out / "adapter_config.json").write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")

    exp = {"fixture": fixture, "model_dir": f"Tests/fixtures/{fixture}", "model_type": mt, "hidden_size": d,
           "num_hidden_layers": n_layers, "lengths": lengths, "pad_id": pad_id, "ids": exp_src["ids"],
           "per_sequence": per_seq,
           "lora": {"r": R, "lora_alpha": ALPHA, "scale": ALPHA / R, "dropout": 0.0, "bias": "none",
                    "target_modules": targets, "init": {"A": f"N(0, {A_STD})", "B": f"N(0, {B_STD})"},
                    "keys": {k: list(v.shape) for k, v in adapter.items()}},
           "head": {"layout": "Sequential(Linear(d,d), ReLU(), Linear(d,d)); y = x @ W.T + b",
                    "keys": {k: list(v.shape) for k, v in head.state_dict().items()},
                    "b1_nudged_units": nudged, "min_abs_preact_margin": HEAD_MARGIN},
           "G": f32list(G),
           "grads_key_format": "<objective>/<adapter key> or <objective>/head.<head key>",
           "embedding": "reps = F.normalize(proj(pool(last_hidden_state)), eps=1e-12); loss = sum(reps * G)",
           "lm": "labels = ids, padding -> -100; HF shifted CE, mean over scored tokens of the whole batch",
           "seeds": {"lora": 1000 + s, "head": 2000 + s, "G": 3000 + s},
           "objectives": results,
           "torch": torch.__version__, "transformers": __import__("transformers").__version__,
           "peft": __import__("peft").__version__}
    dump(out / "expected.json", exp)
    total = sum(f.stat().st_size for f in out.glob("*"))
    assert total < 1_000_000, f"{fixture}: {total} bytes"
    sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e3:.0f}kB" for f in sorted(out.glob("*")))
    nz = f"{len(lp) // 2} LoRA modules, all A/B grads non-zero" + (", per-sequence" if per_seq else
                                                                  ", batch == alone")
    nz += f"; head b1 nudged on {len(nudged)} units"
    summary.append(f"{fixture} ({mt}): {nz}\n      " + "\n      ".join(info) + f"\n      {sizes}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated fixture names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    only = set(args.only.split(",")) if args.only else None
    summary = []
    for fx in FIXTURES:
        if only is None or fx in only:
            make(fx, summary)
    print("fixtures written under", OUT)
    for s in summary:
        print("  " + s)


if __name__ == "__main__":
    main()
