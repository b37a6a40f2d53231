#!/usr/bin/env python3
"""Reference fixtures for the non-Llama decoder families, computed with Hugging Face transformers (float32).

Companion of scripts/make_parity_fixtures.py (which makes Tests/fixtures/tiny-llama*/ and whose helpers are
imported here). Deterministic: fixed seeds, torch.set_num_threads(1), eager attention, float32.

For each family a tiny random model is built with AutoConfig.for_model(...) / AutoModelForCausalLM.from_config
and saved with save_pretrained (safetensors) under Tests/fixtures/tiny-<family>/:

  tiny-mistral      MistralConfig, GQA 4/2 heads, sliding_window 6 (all layers), untied
  tiny-qwen2        Qwen2Config, q/k/v biases (o_proj has none), tied embeddings; config.json carries
                    "use_sliding_window": false together with "sliding_window": 6 (as real Qwen2 checkpoints
                    carry a window that is NOT used): the window must be ignored
  tiny-qwen2-swa    Qwen2Config, use_sliding_window true, sliding_window 6, max_window_layers 1, 3 layers:
                    layer_types = [full, sliding, sliding] (layer i slides iff i >= max_window_layers), untied
  tiny-qwen3        Qwen3Config: q_norm/k_norm (plain RMSNorm w * x over head_dim, before RoPE), head_dim 24
                    (!= 64/4), no biases (attention_bias false), use_sliding_window false, untied
  tiny-phi          PhiConfig (Phi-1.5 style): partial_rotary_factor 0.5, LayerNorm (weight+bias), parallel
                    attention + MLP sharing one input LayerNorm, gelu_new, `dense` output projection, biases on
                    every Linear, final_layernorm, lm_head with bias, qk_layernorm false, GQA 4/2, untied
  tiny-phi3         Phi3Config: fused qkv_proj and gate_up_proj, default RoPE, sliding_window 6 (Phi-3-mini-4k
                    ships sliding_window 2047 and transformers applies it to every layer), untied
  tiny-phi3-longrope Phi3Config with rope_scaling longrope (short_factor / long_factor, 6 values each),
                    partial_rotary_factor 0.75 (12 of 16 head dims rotated, as Phi-4-mini),
                    original_max_position_embeddings 7, max_position_embeddings 128, no sliding window
  tiny-gemma2       Gemma2Config: 4 layers, layer_types [sliding, full, sliding, full], sliding_window 6,
                    head_dim 24 (!= 64/4), query_pre_attn_scalar 20, attn_logit_softcapping 4.0,
                    final_logit_softcapping 5.0 (small, so that tanh is far from linear), post-norms, tied
  tiny-gemma3       Gemma3TextConfig (Gemma3ForCausalLM): 4 layers, layer_types [sliding, sliding, full,
                    sliding] (= sliding_window_pattern 3), sliding_window 6, head_dim 24,
                    query_pre_attn_scalar 32, q_norm/k_norm, rope_theta 1e6 (full layers) and
                    rope_local_base_freq 1e4 (sliding layers), no soft-capping, tied

All: hidden 64, 4 heads, 2 kv heads, intermediate 128, vocab 256, max_position_embeddings 128, 2 layers unless
stated, initializer_range 0.2. After init, every norm and every bias is made non-trivial (generator seeded per
family): RMSNorm/LayerNorm weights of the `w * x` kind = 1 + N(0, 0.2); Gemma's `(1 + w) * x` norm weights =
N(0, 0.2); every bias (Linear and LayerNorm) = N(0, 0.2).

Each directory: config.json, generation_config.json, model.safetensors (float32), tokenizer.json (byte-level,
id = byte value, only so the directory is a complete HF model dir), expected.json.
config.json gets the classic (transformers 4.x) keys real checkpoints carry besides `rope_parameters`:
`rope_theta`, `rope_scaling` (phi3-longrope: {"type": "longrope", short_factor, long_factor}),
`partial_rotary_factor` (phi, phi3), `rope_local_base_freq` and `sliding_window_pattern` (gemma3). The script
reloads every directory with from_pretrained and checks that the reloaded model reproduces the stored values.

expected.json has exactly the layout of tiny-llama*/expected.json (see make_parity_fixtures.py): a batch of 3
sequences of lengths 7, 12, 3 (ids uniform in [3, 256)), right-padded with pad_id 0, run in ONE forward pass;
only real positions are stored:
  ids[b], lengths, pad_id
  causal.hidden[b][t][:]         model.model(...).last_hidden_state (after the final norm)
  causal.logits[b][t][:]         model(...).logits (after final soft-capping, where the family has it)
  bidirectional.hidden / .logits with a 4-D additive float mask (B,1,L,L): 0 where the key is a real token,
                                 finfo(float32).min where it is padding.
Extra keys (ignored by the shared reader): family, model_type, notes, per_sequence.

Bidirectional mode and sliding windows: transformers returns a 4-D mask unchanged from create_causal_mask /
create_sliding_window_causal_mask (masking_utils._preprocess_mask_arguments early exit), and eager attention
ignores its `sliding_window` argument, so with the 4-D mask EVERY layer (sliding or not) lets every real token
see every real token of its sequence: no window at all. The script checks this equals config.is_causal = False
with the window disabled (config.sliding_window = 10**6). It also prints how far that is from transformers'
own is_causal = False with the window kept (create_bidirectional_sliding_window_mask: |q - k| <= window,
inclusive), which is NOT what the fixtures store.

Causal windows: the script checks the window is visible (positions t < window equal the no-window model, some
later positions differ).

phi3-longrope: transformers chooses short vs long factors per forward call with
seq_len = max(position_ids) + 1 > original_max_position_embeddings, i.e. by the PADDED length of the whole batch.
The fixture instead stores each sequence run ALONE (batch of 1, no padding; "per_sequence": true), so the choice
depends on the sequence's own length: lengths 7 and 3 use short_factor (7 > 7 is false), length 12 uses
long_factor. The script prints how much the padded batch differs (lengths 7 and 3 get long factors there).

Usage: python3 scripts/make_family_fixtures.py [--only NAME[,NAME...]]
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_parity_fixtures import (FIX, LENGTHS, PAD_ID, SEED, bidir_mask, byte_tokenizer_json, dump,  # noqa: E402
                                  f32list, make_batch, max_real_diff, run_tiny)

BIG_WINDOW = 10 ** 6
COMMON = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128, vocab_size=256,
              max_position_embeddings=128, initializer_range=0.2, bos_token_id=1, eos_token_id=2, pad_token_id=None,
              num_hidden_layers=2)

LONG_SHORT = [1.0, 1.02, 1.05, 1.1, 1.2, 1.35]
LONG_LONG = [1.0, 1.5, 2.5, 4.0, 7.0, 12.0]

FAMILIES = [
    dict(name="tiny-mistral", model_type="mistral",
         cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=6, tie_word_embeddings=False,
                  hidden_act="silu"),
         classic=dict(rope_theta=10000.0, rope_scaling=None),
         window=6,
         notes="all layers slide (window 6); GQA 4/2; untied; no biases"),
    dict(name="tiny-qwen2", model_type="qwen2",
         cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=6,
                  max_window_layers=1, tie_word_embeddings=True, hidden_act="silu"),
         classic=dict(rope_theta=10000.0, rope_scaling=None, sliding_window=6, use_sliding_window=False),
         window=None,
         notes="q/k/v biases, no o_proj bias; tied; config.json has sliding_window 6 but use_sliding_window "
               "false: no window anywhere"),
    dict(name="tiny-qwen2-swa", model_type="qwen2",
         cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-6, use_sliding_window=True, sliding_window=6,
                  max_window_layers=1, num_hidden_layers=3, tie_word_embeddings=False, hidden_act="silu"),
         classic=dict(rope_theta=10000.0, rope_scaling=None),
         window=6,
         notes="layer_types [full, sliding, sliding]: layer i slides iff use_sliding_window and i >= "
               "max_window_layers"),
    dict(name="tiny-qwen3", model_type="qwen3",
         cfg=dict(head_dim=24, rope_theta=1000000.0, rms_norm_eps=1e-6, attention_bias=False, use_sliding_window=False,
                  sliding_window=None, max_window_layers=2, tie_word_embeddings=False, hidden_act="silu"),
         classic=dict(rope_theta=1000000.0, rope_scaling=None),
         window=None,
         notes="q_norm/k_norm RMSNorm (w * x) per head before RoPE; head_dim 24; no biases; untied"),
    dict(name="tiny-phi", model_type="phi",
         cfg=dict(rope_theta=10000.0, partial_rotary_factor=0.5, layer_norm_eps=1e-5, hidden_act="gelu_new",
                  qk_layernorm=False, tie_word_embeddings=False),
         classic=dict(rope_theta=10000.0, rope_scaling=None, partial_rotary_factor=0.5),
         window=None,
         notes="parallel attn+MLP on one LayerNorm output; rotary on first 8 of 16 head dims; gelu_new; "
               "biases everywhere incl. lm_head"),
    dict(name="tiny-phi3", model_type="phi3",
         cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=6, original_max_position_embeddings=128,
                  tie_word_embeddings=False, hidden_act="silu"),
         classic=dict(rope_theta=10000.0, rope_scaling=None),
         window=6,
         notes="fused qkv_proj [q|k|v] and gate_up_proj [gate|up]; sliding_window 6 on all layers"),
    dict(name="tiny-phi3-longrope", model_type="phi3",
         cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=None, original_max_position_embeddings=7,
                  partial_rotary_factor=0.75, tie_word_embeddings=False, hidden_act="silu",
                  rope_scaling={"rope_type": "longrope", "short_factor": LONG_SHORT, "long_factor": LONG_LONG}),
         classic=dict(rope_theta=10000.0, partial_rotary_factor=0.75,
                      rope_scaling={"type": "longrope", "short_factor": LONG_SHORT, "long_factor": LONG_LONG}),
         window=None, per_sequence=True,
         notes="longrope, original_max_position_embeddings 7 (top-level key), max_position_embeddings 128; "
               "partial rotary 12 of 16 dims; values are per sequence run alone"),
    dict(name="tiny-gemma2", model_type="gemma2",
         cfg=dict(num_hidden_layers=4, head_dim=24, rope_theta=10000.0, rms_norm_eps=1e-6, query_pre_attn_scalar=20,
                  attn_logit_softcapping=4.0, final_logit_softcapping=5.0, sliding_window=6,
                  hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                  layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"]),
         classic=dict(rope_theta=10000.0, rope_scaling=None),
         window=6,
         notes="layer_types alternate sliding/full starting with sliding; softcaps 4 (attention) and 5 (logits)"),
    dict(name="tiny-gemma3", model_type="gemma3_text",
         cfg=dict(num_hidden_layers=4, head_dim=24, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                  rms_norm_eps=1e-6, query_pre_attn_scalar=32, sliding_window=6,
                  hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                  attn_logit_softcapping=None, final_logit_softcapping=None,
                  layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"]),
         classic=dict(rope_theta=1000000.0, rope_local_base_freq=10000.0, rope_scaling=None,
                      sliding_window_pattern=3),
         window=6,
         notes="q_norm/k_norm (1+w) over head_dim before RoPE; sliding layers use rope_local_base_freq, full "
               "layers rope_theta"),
]


def make_config(fam):
    from transformers import AutoConfig
    kw = dict(COMMON)
    kw.update(copy.deepcopy(fam["cfg"]))
    cfg = AutoConfig.for_model(fam["model_type"], **kw)
    cfg._attn_implementation = "eager"
    return cfg


def perturb_norms_and_biases(model, seed):
    """Non-trivial norms and biases so that a missing/misplaced one shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    done = set()
    with torch.no_grad():
        for mname, mod in model.named_modules():
            cls = type(mod).__name__
            if isinstance(mod, torch.nn.LayerNorm) or cls.endswith("RMSNorm"):
                w = mod.weight
                noise = 0.2 * torch.randn(w.shape, generator=g)
                if cls.startswith("Gemma"):  # y = x_hat * (1 + w)
                    w.copy_(noise)
                else:                         # y = x_hat * w (+ b)
                    w.copy_(1.0 + noise)
                done.add(f"{mname}.weight")
        for pname, p in model.named_parameters():
            if pname.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
                done.add(pname)
    return sorted(done)


def run_alone(model, ids, attn):
    """Each sequence as a batch of 1 without padding; returned padded like the batch (padding = 0)."""
    B, L = ids.shape
    out = {}
    for mode in ("causal", "bidirectional"):
        H = torch.zeros(B, L, model.config.hidden_size)
        G = torch.zeros(B, L, model.config.vocab_size)
        out[mode] = (H, G)
    for b, n in enumerate(LENGTHS):
        r = run_tiny(model, ids[b:b + 1, :n], attn[b:b + 1, :n])
        for mode in ("causal", "bidirectional"):
            out[mode][0][b, :n] = r[mode][0][0]
            out[mode][1][b, :n] = r[mode][1][0]
    return out


def run(model, ids, attn, per_sequence):
    return run_alone(model, ids, attn) if per_sequence else run_tiny(model, ids, attn)


def max_abs(res):
    return {m: (max(float(res[m][0][b, :n].abs().max()) for b, n in enumerate(LENGTHS)),
                max(float(res[m][1][b, :n].abs().max()) for b, n in enumerate(LENGTHS))) for m in res}


def make_family(fam, summary):
    from transformers import AutoModelForCausalLM
    name = fam["name"]
    per_seq = fam.get("per_sequence", False)
    torch.manual_seed(SEED)
    cfg = make_config(fam)
    model = AutoModelForCausalLM.from_config(cfg).float().eval()
    touched = perturb_norms_and_biases(model, SEED + 7)
    ids, attn, seqs = make_batch(low=3)
    res = run(model, ids, attn, per_seq)
    info = []

    # 4-D mask == config.is_causal=False with the window disabled (full bidirectional attention everywhere)
    sw = getattr(model.config, "sliding_window", None)
    with torch.no_grad():
        model.config.is_causal = False
        if sw is not None:
            model.config.sliding_window = BIG_WINDOW
        if per_seq:
            h_nc = torch.zeros_like(res["bidirectional"][0])
            for b, n in enumerate(LENGTHS):
                h_nc[b, :n] = model.model(input_ids=ids[b:b + 1, :n],
                                          attention_mask=attn[b:b + 1, :n]).last_hidden_state[0]
        else:
            h_nc = model.model(input_ids=ids, attention_mask=attn).last_hidden_state
        model.config.sliding_window = sw
        d_nc = max_real_diff(res["bidirectional"][0], h_nc, LENGTHS)
        assert d_nc < 1e-5, f"{name}: 4-D mask != is_causal=False without window ({d_nc})"
        info.append(f"4-D vs is_causal=False(no window) {d_nc:.1e}")
        if fam["window"]:
            h_ncw = model.model(input_ids=ids, attention_mask=attn).last_hidden_state
            d_ncw = max_real_diff(res["bidirectional"][0], h_ncw, LENGTHS)
            info.append(f"[info] 4-D vs transformers is_causal=False WITH window (|q-k|<=w) {d_ncw:.2f}")
        model.config.is_causal = True

    # batch vs alone
    if per_seq:
        batch = run_tiny(model, ids, attn)
        d_b = max_real_diff(batch["causal"][0], res["causal"][0], LENGTHS)
        info.append(f"[info] padded batch (long factors for all) vs per-sequence {d_b:.2f}")
        assert d_b > 1e-2, f"{name}: longrope short/long selection does not show"
        d12 = float((batch["causal"][0][1, :12] - res["causal"][0][1, :12]).abs().max())
        assert d12 < 1e-5, f"{name}: length-12 sequence differs between batch and alone ({d12})"
    else:
        alone = run_alone(model, ids, attn)
        d_alone = max(max_real_diff(alone[m][0], res[m][0], LENGTHS) for m in res)
        assert d_alone < 1e-5, f"{name}: padded batch != alone ({d_alone})"
        info.append(f"batch vs alone {d_alone:.1e}")

    # causal != bidirectional
    d_modes = max_real_diff(res["causal"][0], res["bidirectional"][0], LENGTHS)
    assert d_modes > 1e-2, f"{name}: causal and bidirectional too close ({d_modes})"
    info.append(f"causal vs bidir {d_modes:.2f}")

    # the causal window shows: positions t < w unchanged without the window, later ones change
    if fam["window"]:
        w = fam["window"]
        with torch.no_grad():
            model.config.sliding_window = BIG_WINDOW
            h_nw = run(model, ids, attn, per_seq)["causal"][0]
            model.config.sliding_window = sw
        h = res["causal"][0]
        d_in = max(float((h[b, :min(n, w)] - h_nw[b, :min(n, w)]).abs().max()) for b, n in enumerate(LENGTHS))
        d_out = max(float((h[b, w:n] - h_nw[b, w:n]).abs().max()) for b, n in enumerate(LENGTHS) if n > w)
        assert d_in < 1e-5 and d_out > 1e-2, f"{name}: window check failed ({d_in}, {d_out})"
        info.append(f"causal window: t<{w} vs no-window {d_in:.1e}, t>={w} {d_out:.2f}")

    # soft-capping is active (ablation)
    if getattr(model.config, "final_logit_softcapping", None):
        with torch.no_grad():
            fc = model.config.final_logit_softcapping
            model.config.final_logit_softcapping = None
            raw = run(model, ids, attn, per_seq)["causal"][1]
            model.config.final_logit_softcapping = fc
        info.append(f"final softcap {fc}: max|raw logit| {max(float(raw[b, :n].abs().max()) for b, n in enumerate(LENGTHS)):.2f}")
    if getattr(model.config, "attn_logit_softcapping", None):
        mods = [m for m in model.modules() if hasattr(m, "attn_logit_softcapping")]
        with torch.no_grad():
            for m in mods:
                m.attn_logit_softcapping = None
            h_ns = run(model, ids, attn, per_seq)["causal"][0]
            for m in mods:
                m.attn_logit_softcapping = model.config.attn_logit_softcapping
        info.append(f"attn softcap off changes hidden by {max_real_diff(h_ns, res['causal'][0], LENGTHS):.2f}")

    # save
    d = FIX / name
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("*"):
        f.unlink()
    model.save_pretrained(d, safe_serialization=True)
    cj = json.loads((d / "config.json").read_text())
    cj.pop("_attn_implementation", None)
    cj.pop("is_causal", None)
    cj.pop("_sliding_window_pattern", None)  # gemma3 private attribute; the public key is set from `classic`
    cj.update(copy.deepcopy(fam["classic"]))
    (d / "config.json").write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")
    (d / "tokenizer.json").write_text(json.dumps(byte_tokenizer_json(), ensure_ascii=False) + "\n", encoding="utf-8")

    # reload check
    re_m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    assert type(re_m) is type(model)
    re_res = run(re_m, ids, attn, per_seq)
    d_re = 0.0
    for mode in ("causal", "bidirectional"):
        for k in (0, 1):
            d_re = max(d_re, max_real_diff(re_res[mode][k], res[mode][k], LENGTHS))
    assert d_re < 1e-6, f"{name}: reloaded model differs ({d_re})"
    info.append(f"reload {d_re:.1e}")

    exp = {"model": name, "family": fam["model_type"], "lengths": LENGTHS, "pad_id": PAD_ID, "ids": seqs,
           "hidden_size": 64, "vocab_size": 256, "per_sequence": per_seq, "notes": fam["notes"],
           "tie_word_embeddings": bool(cj.get("tie_word_embeddings", False))}
    for mode in ("causal", "bidirectional"):
        h, lg = res[mode]
        exp[mode] = {"hidden": [f32list(h[b, :n]) for b, n in enumerate(LENGTHS)],
                     "logits": [f32list(lg[b, :n]) for b, n in enumerate(LENGTHS)]}
    size = dump(d / "expected.json", exp)
    for f in d.glob("*"):
        assert f.stat().st_size < 1_000_000, f"{f} too large"
    ma = max_abs(res)
    sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e3:.0f}kB" for f in sorted(d.glob("*")))
    summary.append(f"{name}: max|hidden| {max(ma[m][0] for m in ma):.2f}, max|logit| {max(ma[m][1] for m in ma):.2f}; "
                   + "; ".join(info) + f"\n      {len(touched)} norm/bias tensors randomised; {sizes}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated fixture names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    only = set(args.only.split(",")) if args.only else None
    summary = []
    for fam in FAMILIES:
        if only is None or fam["name"] in only:
            make_family(fam, summary)
    print("fixtures written under", FIX)
    for s in summary:
        print("  " + s)


if __name__ == "__main__":
    main()
