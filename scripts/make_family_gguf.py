#!/usr/bin/env python3
"""Tests/fixtures/tiny-qwen3 as a GGUF file, named as llama.cpp's convert_hf_to_gguf.py names a Qwen3 model:
general.architecture "qwen3", qwen3.* hyper-parameters (attention.key_length = head_dim 24), tensors
token_embd / blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_q_norm, attn_k_norm, attn_output, ffn_norm, ffn_gate,
ffn_up, ffn_down} / output_norm / output, all F32, Q/K rows NOT permuted (llama.cpp permutes only llama-style
models), tokenizer.ggml.model "gpt2" with pre "qwen2" (what llama.cpp writes for Qwen3 vocabularies) over the
fixture's byte-level vocabulary. The decoder on this file must reproduce tiny-qwen3/expected.json (transformers).

Writes Tests/fixtures/generated/tiny-qwen3.gguf (run by scripts/make_generated_fixtures.sh).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fuzz_seeds import ROOT, f32_tensors, write_gguf  # noqa: E402

SRC = os.path.join(ROOT, "Tests", "fixtures", "tiny-qwen3")
OUT = os.path.join(ROOT, "Tests", "fixtures", "generated", "tiny-qwen3.gguf")


def main():
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    t = f32_tensors(os.path.join(SRC, "model.safetensors"))

    tensors = []

    def add(name, arr):
        tensors.append((name, list(reversed(arr.shape)), 0, arr.astype(np.float32).tobytes()))

    add("token_embd.weight", t("model.embed_tokens.weight"))
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        for hf, gg in [("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                       ("self_attn.o_proj", "attn_output"), ("self_attn.q_norm", "attn_q_norm"),
                       ("self_attn.k_norm", "attn_k_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
                       ("mlp.down_proj", "ffn_down"), ("input_layernorm", "attn_norm"),
                       ("post_attention_layernorm", "ffn_norm")]:
            add("blk.%d.%s.weight" % (i, gg), t(p + hf + ".weight"))
    add("output_norm.weight", t("model.norm.weight"))
    add("output.weight", t("lm_head.weight"))
    tok = json.load(open(os.path.join(SRC, "tokenizer.json")))
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    a = "qwen3"
    kvs = [
        ("general.architecture", 8, a),
        (a + ".block_count", 4, cfg["num_hidden_layers"]),
        (a + ".context_length", 4, cfg["max_position_embeddings"]),
        (a + ".embedding_length", 4, cfg["hidden_size"]),
        (a + ".feed_forward_length", 4, cfg["intermediate_size"]),
        (a + ".attention.head_count", 4, cfg["num_attention_heads"]),
        (a + ".attention.head_count_kv", 4, cfg["num_key_value_heads"]),
        (a + ".attention.key_length", 4, cfg["head_dim"]),
        (a + ".attention.value_length", 4, cfg["head_dim"]),
        (a + ".rope.freq_base", 6, cfg["rope_theta"]),
        (a + ".attention.layer_norm_rms_epsilon", 6, cfg["rms_norm_eps"]),
        ("tokenizer.ggml.model", 8, "gpt2"),
        ("tokenizer.ggml.pre", 8, "qwen2"),
        ("tokenizer.ggml.tokens", 9, (8, [k for k, _ in vocab])),
        ("tokenizer.ggml.token_type", 9, (5, [1] * len(vocab))),
        ("tokenizer.ggml.merges", 9, (8, [])),
        ("tokenizer.ggml.bos_token_id", 4, 1),
        ("tokenizer.ggml.eos_token_id", 4, 2),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_gguf(OUT, kvs, tensors)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
