#!/usr/bin/env python3
"""Independent NumPy (float64) re-implementation of the decoder families in docs/families.md.

It reads only config.json and model.safetensors of each Tests/fixtures/tiny-*/ directory (no transformers), runs
every sequence of expected.json alone (no padding), causally and bidirectionally, and compares with the stored
hidden states and logits. It is the executable form of docs/families.md: if it passes at 1e-4, the prose there is
complete enough to reproduce transformers.

Usage: python3 scripts/family_reference.py [tiny-NAME ...]   (default: every tiny-* directory but tiny-llama*)
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

FIX = Path(__file__).resolve().parent.parent / "Tests" / "fixtures"


def rms(x, w, eps, gemma):
    y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return y * (1.0 + w) if gemma else y * w


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased variance
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):  # gelu_new == gelu_pytorch_tanh
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def softcap(x, c):
    return np.tanh(x / c) * c if c else x


class Cfg:
    def __init__(self, d):
        c = json.loads((d / "config.json").read_text())
        self.c = c
        self.mt = c["model_type"]
        self.gemma = self.mt in ("gemma2", "gemma3_text")
        self.H, self.nh, self.nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c.get("head_dim") or self.H // self.nh
        self.L = c["num_hidden_layers"]
        self.eps = c.get("rms_norm_eps", c.get("layer_norm_eps"))
        rs = c.get("rope_scaling") or {}
        self.rope_type = rs.get("rope_type", rs.get("type", "default"))
        if self.rope_type in ("su", "yarn") and self.mt == "phi3":
            self.rope_type = "longrope"
        self.prf = c.get("partial_rotary_factor", 1.0) or 1.0
        self.rot = int(self.hd * self.prf)
        # which layers slide
        sw = c.get("sliding_window")
        if self.mt in ("qwen2", "qwen3") and not c.get("use_sliding_window", False):
            sw = None
        self.window = sw
        lt = c.get("layer_types")
        if self.mt in ("mistral", "phi3"):
            lt = ["sliding_attention" if sw is not None else "full_attention"] * self.L
        elif lt is None:
            if self.mt in ("qwen2", "qwen3"):
                lt = ["sliding_attention" if sw is not None and i >= c.get("max_window_layers", 28)
                      else "full_attention" for i in range(self.L)]
            elif self.mt == "gemma2":
                lt = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(self.L)]
            elif self.mt == "gemma3_text":
                pat = c.get("sliding_window_pattern", 6)
                lt = ["sliding_attention" if (i + 1) % pat else "full_attention" for i in range(self.L)]
            else:
                lt = ["full_attention"] * self.L
        self.layer_types = lt
        if self.gemma:
            self.scale = c["query_pre_attn_scalar"] ** -0.5
        else:
            self.scale = self.hd ** -0.5
        self.attn_cap = c.get("attn_logit_softcapping") if self.mt == "gemma2" else None  # gemma3 ignores it
        self.final_cap = c.get("final_logit_softcapping") if self.gemma else None
        self.act = c.get("hidden_activation") or c.get("hidden_act")

    def rope_tables(self, n, layer_type):
        c = self.c
        theta = c.get("rope_theta", 10000.0)
        if self.mt == "gemma3_text" and layer_type == "sliding_attention":
            theta = c.get("rope_local_base_freq", 10000.0)
        d = self.rot
        expo = np.arange(0, d, 2, dtype=np.float64) / d
        att = 1.0
        if self.rope_type == "longrope":
            rs = c["rope_scaling"]
            omax = c.get("original_max_position_embeddings") or rs["original_max_position_embeddings"]
            ext = np.array(rs["long_factor"] if n > omax else rs["short_factor"], dtype=np.float64)
            inv = 1.0 / (ext * theta ** expo)
            factor = rs.get("factor") or c["max_position_embeddings"] / omax
            att = rs.get("attention_factor")
            if att is None:
                att = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(omax))
        else:
            inv = 1.0 / theta ** expo
        ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
        ang = np.concatenate([ang, ang], -1)
        return np.cos(ang) * att, np.sin(ang) * att


def apply_rope(x, cos, sin, rot):
    # x: (heads, n, hd); rotate-half within the first `rot` dims, the rest passes through
    xr, xp = x[..., :rot], x[..., rot:]
    h = rot // 2
    rh = np.concatenate([-xr[..., h:], xr[..., :h]], -1)
    return np.concatenate([xr * cos + rh * sin, xp], -1)


def forward(cfg, W, ids, bidirectional):
    c, mt = cfg.c, cfg.mt
    n = len(ids)
    x = W["model.embed_tokens.weight"][ids]
    if cfg.gemma:
        x = x * float(np.float32(math.sqrt(cfg.H)))
    q_idx = np.arange(n)[:, None]
    k_idx = np.arange(n)[None, :]
    for i in range(cfg.L):
        p = f"model.layers.{i}."
        lt = cfg.layer_types[i]
        if mt == "phi":
            hin = layernorm(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], cfg.eps)
        else:
            hin = rms(x, W[p + "input_layernorm.weight"], cfg.eps, cfg.gemma)
        # projections
        a = p + "self_attn."
        if mt == "phi3":
            qkv = hin @ W[a + "qkv_proj.weight"].T
            nq, nk = cfg.nh * cfg.hd, cfg.nkv * cfg.hd
            q, k, v = qkv[:, :nq], qkv[:, nq:nq + nk], qkv[:, nq + nk:]
        else:
            q, k, v = (hin @ W[a + f"{t}_proj.weight"].T + W.get(a + f"{t}_proj.bias", 0.0) for t in "qkv")
        q = q.reshape(n, cfg.nh, cfg.hd).transpose(1, 0, 2)
        k = k.reshape(n, cfg.nkv, cfg.hd).transpose(1, 0, 2)
        v = v.reshape(n, cfg.nkv, cfg.hd).transpose(1, 0, 2)
        if mt in ("gemma3_text", "qwen3"):
            q = rms(q, W[a + "q_norm.weight"], cfg.eps, cfg.gemma)
            k = rms(k, W[a + "k_norm.weight"], cfg.eps, cfg.gemma)
        cos, sin = cfg.rope_tables(n, lt)
        q, k = apply_rope(q, cos, sin, cfg.rot), apply_rope(k, cos, sin, cfg.rot)
        rep = cfg.nh // cfg.nkv
        k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)  # query head h uses kv head h // rep
        s = q @ k.transpose(0, 2, 1) * cfg.scale
        s = softcap(s, cfg.attn_cap)
        if bidirectional:
            allowed = np.ones((n, n), bool)
        else:
            allowed = k_idx <= q_idx
            if lt == "sliding_attention" and cfg.window is not None:
                allowed &= k_idx > q_idx - cfg.window
        s = np.where(allowed, s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(n, cfg.nh * cfg.hd)
        if mt == "phi":
            o = o @ W[a + "dense.weight"].T + W[a + "dense.bias"]
        else:
            o = o @ W[a + "o_proj.weight"].T + W.get(a + "o_proj.bias", 0.0)
        m = p + "mlp."
        if mt == "phi":
            f = gelu_tanh(hin @ W[m + "fc1.weight"].T + W[m + "fc1.bias"]) @ W[m + "fc2.weight"].T + W[m + "fc2.bias"]
            x = x + o + f
            continue
        if cfg.gemma:
            x = x + rms(o, W[p + "post_attention_layernorm.weight"], cfg.eps, True)
            h2 = rms(x, W[p + "pre_feedforward_layernorm.weight"], cfg.eps, True)
        else:
            x = x + o
            h2 = rms(x, W[p + "post_attention_layernorm.weight"], cfg.eps, False)
        if mt == "phi3":
            gu = h2 @ W[m + "gate_up_proj.weight"].T
            g, u = gu[:, :gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
        else:
            g, u = h2 @ W[m + "gate_proj.weight"].T, h2 @ W[m + "up_proj.weight"].T
        act = gelu_tanh if cfg.act in ("gelu_pytorch_tanh", "gelu_new") else silu
        f = (act(g) * u) @ W[m + "down_proj.weight"].T
        if cfg.gemma:
            f = rms(f, W[p + "post_feedforward_layernorm.weight"], cfg.eps, True)
        x = x + f
    if mt == "phi":
        h = layernorm(x, W["model.final_layernorm.weight"], W["model.final_layernorm.bias"], cfg.eps)
    else:
        h = rms(x, W["model.norm.weight"], cfg.eps, cfg.gemma)
    lm = W.get("lm_head.weight", W["model.embed_tokens.weight"])  # tied: the unscaled embedding matrix
    logits = h @ lm.T + W.get("lm_head.bias", 0.0)
    return h, softcap(logits, cfg.final_cap)


def check(d):
    cfg = Cfg(d)
    W = {k: v.astype(np.float64) for k, v in load_file(str(d / "model.safetensors")).items()}
    exp = json.loads((d / "expected.json").read_text())
    worst = 0.0
    for b, ids in enumerate(exp["ids"]):
        for mode in ("causal", "bidirectional"):
            h, lg = forward(cfg, W, np.array(ids), mode == "bidirectional")
            worst = max(worst, float(np.abs(h - np.array(exp[mode]["hidden"][b])).max()),
                        float(np.abs(lg - np.array(exp[mode]["logits"][b])).max()))
    return worst


def main():
    names = sys.argv[1:] or sorted(p.name for p in FIX.glob("tiny-*")
                                   if (p / "expected.json").is_file() and not p.name.startswith("tiny-llama"))
    bad = 0
    for nme in names:
        w = check(FIX / nme)
        ok = w < 1e-4
        bad += not ok
        print(f"{nme:20s} max |ref - expected| {w:.2e} {'ok' if ok else 'FAIL'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
