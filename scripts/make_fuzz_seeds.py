#!/usr/bin/env python3
"""Writes the fuzzing seed corpora of fuzz/seeds/<target>/ from real files, cut small.

  gguf, gguf-tokenizer: SmolLM2-135M-Instruct.Q4_1.gguf's metadata with the vocabulary cut to 400
      tokens (merges kept only when all three tokens survive) and a handful of tiny tensors of every
      supported type; the llama SentencePiece vocab (ggml-vocab-llama-spm.gguf) cut the same way; and the
      literal first 64 KB of the SmolLM2 GGUF with kv_count patched to the pairs that fit and tensor_count 0.
  safetensors: Tests/fixtures/safetensors/tiny.safetensors and a small F32/F16/BF16 file.
  config: every Tests/fixtures/tiny-*/config.json.
  tokenizer-json: tiny-llama's tokenizer.json, SmolLM2's cut to 400 tokens, a SentencePiece-style one.
  encode-smollm2, encode-spm: the texts of Tests/fixtures/tokenizer/corpus.jsonl.
  model-gguf: Tests/fixtures/tiny-llama as a GGUF (F32, Q8_0 and Q4_0 tensors, byte-level vocab).
  grl-jsonl: data/grl/wordnet-tiny/{train,heldout}.jsonl in < 4 KB pieces and one file of every line shape
      (cluster int/string, CRLF, blank and malformed lines). train-yaml: examples/*.yaml, the resume test's
      config and one with every key (anchors, flow/block styles, nulls, .inf). `--train-only`: just these two.

Usage: scripts/make_fuzz_seeds.py   (models: scripts/fetch_models.sh; ~/.cache/ullme or $ULLME_CACHE)
"""
import base64
import glob
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("ULLME_CACHE") or os.path.expanduser("~/.cache/ullme")
OUT = os.path.join(ROOT, "fuzz", "seeds")
SMOL = os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
SPM = os.path.join(CACHE, "vocab", "ggml-vocab-llama-spm.gguf")
NTOK = 400

# ---- minimal GGUF reader / writer (v3, little-endian) -----------------------------------------
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_value(b, o, t):
    if t in SCALAR:
        f = SCALAR[t]
        return struct.unpack_from(f, b, o)[0], o + struct.calcsize(f)
    if t == 8:
        n = struct.unpack_from("<Q", b, o)[0]
        return b[o + 8:o + 8 + n].decode("utf-8", "replace"), o + 8 + n
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, o)
        o += 12
        vals = []
        for _ in range(n):
            v, o = read_value(b, o, et)
            vals.append(v)
        return (et, vals), o
    raise ValueError(t)


def read_kvs(path, limit=None):
    """[(key, type, value, end_offset)] of the metadata; stops at `limit` bytes if given."""
    with open(path, "rb") as f:
        b = f.read(limit) if limit else f.read()
    _, _, _, nkv = struct.unpack_from("<IIQQ", b, 0)
    o = 24
    out = []
    for _ in range(nkv):
        try:
            n = struct.unpack_from("<Q", b, o)[0]
            key = b[o + 8:o + 8 + n].decode()
            t = struct.unpack_from("<I", b, o + 8 + n)[0]
            v, o2 = read_value(b, o + 12 + n, t)
        except (struct.error, ValueError, UnicodeDecodeError):
            break
        if o2 > len(b):
            break
        out.append((key, t, v, o2))
        o = o2
    return b, out


def enc_value(t, v):
    if t in SCALAR:
        return struct.pack(SCALAR[t], v)
    if t == 8:
        s = v.encode()
        return struct.pack("<Q", len(s)) + s
    et, vals = v
    return struct.pack("<IQ", et, len(vals)) + b"".join(enc_value(et, x) for x in vals)


def write_gguf(path, kvs, tensors=(), align=32):
    """kvs: [(key, type, value)]; tensors: [(name, ne list, ggml type, raw bytes)]."""
    h = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        kb = k.encode()
        h += struct.pack("<Q", len(kb)) + kb + struct.pack("<I", t) + enc_value(t, v)
    data = b""
    for name, ne, ty, raw in tensors:
        nb = name.encode()
        h += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        h += struct.pack("<IQ", ty, len(data))
        data += raw + b"\0" * ((-len(raw)) % align)
    h += b"\0" * ((-len(h)) % align)
    with open(path, "wb") as f:
        f.write(h + data)


def cut_vocab(kvs, n):
    """Cuts tokenizer arrays to n tokens and keeps only merges whose tokens all survive."""
    d = {k: (t, v) for k, t, v, _ in kvs}
    toks = d["tokenizer.ggml.tokens"][1][1][:n]
    keep = set(toks)
    out = []
    for k, t, v, _ in kvs:
        if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
            v = (v[0], v[1][:n])
        elif k == "tokenizer.ggml.merges":
            ms = [m for m in v[1] if len(m.split(" ", 1)) == 2 and m.split(" ", 1)[0] in keep
                  and m.split(" ", 1)[1] in keep and m.replace(" ", "", 1) in keep]
            v = (v[0], ms)
        elif k.endswith("_token_id") and v >= n:
            v = n - 1
        elif k == "tokenizer.chat_template":
            continue
        out.append((k, t, v))
    return out


def tiny_tensors():
    """One small tensor of each supported ggml type (bytes from a fixed pattern)."""
    def pat(n):
        return bytes((i * 37 + 11) & 0xFF for i in range(n))
    f32 = struct.pack("<8f", *[0.5 * i - 1 for i in range(8)])
    return [
        ("token_embd.weight", [4, 2], 0, f32),
        ("f16", [4, 1], 1, struct.pack("<4e", 1.0, -2.0, 0.25, 65504.0)),
        ("q4_0", [32, 1], 2, pat(18)),
        ("q4_1", [32, 2], 3, pat(40)),
        ("q5_0", [32, 1], 6, pat(22)),
        ("q5_1", [32, 1], 7, pat(24)),
        ("q8_0", [32, 1], 8, pat(34)),
        ("q4_k", [256, 1], 12, pat(144)),
        ("q5_k", [256, 1], 13, pat(176)),
        ("q6_k", [256, 1], 14, pat(210)),
        ("bf16", [2, 2], 30, struct.pack("<4H", 0x3F80, 0xC000, 0x0000, 0x7F80)),
    ]


def st_file(path, tensors, meta=None):
    hdr, data = {}, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def f32_tensors(path):
    """A lookup name -> float32 numpy array over an all-F32 .safetensors file."""
    import numpy as np
    raw = open(path, "rb").read()
    n = struct.unpack_from("<Q", raw, 0)[0]
    hdr = json.loads(raw[8:8 + n])

    def t(name):
        h = hdr[name]
        b, e = h["data_offsets"]
        assert h["dtype"] == "F32", (path, name, h["dtype"])
        return np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(h["shape"])
    return t


def tiny_llama_gguf(path):
    """Tests/fixtures/tiny-llama converted to GGUF naming (weights as stored; Q/K not permuted, which
    only changes the numbers) with ffn_down in Q8_0 and ffn_up in Q4_0 (re-encoded crudely)."""
    import numpy as np
    d = os.path.join(ROOT, "Tests/fixtures/tiny-llama")
    cfg = json.load(open(os.path.join(d, "config.json")))
    t = f32_tensors(os.path.join(d, "model.safetensors"))
    def q8_0(a):
        out = b""
        for blk in a.reshape(-1, 32):
            sc = float(np.abs(blk).max()) / 127 or 1.0
            out += struct.pack("<e", sc) + np.clip(np.round(blk / sc), -127, 127).astype(np.int8).tobytes()
        return out
    def q4_0(a):
        out = b""
        for blk in a.reshape(-1, 32):
            sc = float(np.abs(blk).max()) / 8 or 1.0
            q = (np.clip(np.round(blk / sc), -8, 7) + 8).astype(np.uint8)
            out += struct.pack("<e", sc) + (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes()
        return out
    tensors = []
    def add(name, arr, ty=0):
        data = arr.astype(np.float32).tobytes() if ty == 0 else (q8_0(arr) if ty == 8 else q4_0(arr))
        tensors.append((name, list(reversed(arr.shape)), ty, data))
    add("token_embd.weight", t("model.embed_tokens.weight"))
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        for hf, gg in [("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                       ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate")]:
            add("blk.%d.%s.weight" % (i, gg), t(p + hf + ".weight"))
        add("blk.%d.ffn_up.weight" % i, t(p + "mlp.up_proj.weight"), 2)
        add("blk.%d.ffn_down.weight" % i, t(p + "mlp.down_proj.weight"), 8)
        add("blk.%d.attn_norm.weight" % i, t(p + "input_layernorm.weight"))
        add("blk.%d.ffn_norm.weight" % i, t(p + "post_attention_layernorm.weight"))
    add("output_norm.weight", t("model.norm.weight"))
    add("output.weight", t("lm_head.weight"))
    tok = json.load(open(os.path.join(d, "tokenizer.json")))
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    kvs = [
        ("general.architecture", 8, "llama"),
        ("llama.block_count", 4, cfg["num_hidden_layers"]),
        ("llama.context_length", 4, cfg["max_position_embeddings"]),
        ("llama.embedding_length", 4, cfg["hidden_size"]),
        ("llama.feed_forward_length", 4, cfg["intermediate_size"]),
        ("llama.attention.head_count", 4, cfg["num_attention_heads"]),
        ("llama.attention.head_count_kv", 4, cfg["num_key_value_heads"]),
        ("llama.attention.key_length", 4, cfg["head_dim"]),
        ("llama.rope.freq_base", 6, cfg["rope_theta"]),
        ("llama.attention.layer_norm_rms_epsilon", 6, cfg["rms_norm_eps"]),
        ("tokenizer.ggml.model", 8, "gpt2"),
        ("tokenizer.ggml.pre", 8, "default"),
        ("tokenizer.ggml.tokens", 9, (8, [k for k, _ in vocab])),
        ("tokenizer.ggml.token_type", 9, (5, [1] * len(vocab))),
        ("tokenizer.ggml.merges", 9, (8, [])),
        ("tokenizer.ggml.bos_token_id", 4, 1),
        ("tokenizer.ggml.eos_token_id", 4, 2),
    ]
    write_gguf(path, kvs, tensors)


def train_seeds():
    """Seeds of the training parsers (grl-jsonl, train-yaml), from the repository's real files; needs no
    model. `scripts/make_fuzz_seeds.py --train-only` rewrites just these two directories."""
    dirs = {t: os.path.join(OUT, t) for t in ["grl-jsonl", "train-yaml"]}
    for d in dirs.values():
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
    # JSONL: consecutive lines of the tiny WordNet sets, each seed < 4 KB (the target's max_len).
    for name in ["train", "heldout"]:
        with open(os.path.join(ROOT, "data/grl/wordnet-tiny", name + ".jsonl"), "rb") as f:
            lines = f.read().splitlines(keepends=True)
        chunk, n = b"", 0
        for line in lines[:120]:
            if len(chunk) + len(line) > 4000:
                if n < 6:
                    with open(os.path.join(dirs["grl-jsonl"], "wordnet-%s-%d.jsonl" % (name, n)), "wb") as g:
                        g.write(chunk)
                n += 1
                chunk = b""
            chunk += line
    # Every shape the parser distinguishes: cluster as int and string, CRLF, blank lines, malformed lines.
    with open(os.path.join(dirs["grl-jsonl"], "shapes.jsonl"), "wb") as g:
        g.write(b'{"query": "q1", "positive": ["p"], "negative": ["n1", "n2"], "cluster": 3}\r\n'
                b'\n   \t\n'
                b'{"query": "q2", "positive": ["p", "p2"], "negative": ["n"], "cluster": "c", "id": "x"}\n'
                b'{"query": "", "positive": ["p"], "negative": ["n"]}\n'
                b'{"query": "q", "positive": [], "negative": ["n"]}\n'
                b'{"query": "q", "positive": ["p"], "negative": "n"}\n'
                b'["not", "an", "object"]\n'
                b'{"query": "caf\xc3\xa9 \\u65e5\\u672c \\ud83d\\ude00", "positive": ["\\n"], "negative": ["\\"\\\\"], "cluster": -1}\n'
                b'{"query": "q", "positive": ["p"], "negative": ["n"], "cluster": 1.5}\n'
                b'{bad json\n'
                b'{"query": "last line without newline", "positive": ["p"], "negative": ["n"]}')
    # YAML: the example configs, the configs the tests write, every key at once.
    for p in sorted(glob.glob(os.path.join(ROOT, "examples/*.yaml"))):
        shutil.copy(p, dirs["train-yaml"])
    with open(os.path.join(dirs["train-yaml"], "test-resume.yaml"), "w") as g:
        g.write("model: Tests/fixtures/tiny-llama\ndata:\n  - name: wordnet-tiny\n    file: data/grl/wordnet-tiny/train.jsonl\n"
                "    instruction: Given a sentence, retrieve the definition.\noutput_dir: /tmp/out\nmax_seq_length: 128\n"
                "loar_r: 4\nlora_alpha: 8\nglobal_batch_size: 8\ngc_chunk_size: 4\nmax_steps: 14\ncheckpoint_interval: 2\n"
                "use_gen: true\ngen_loss_type: sigmoid\nuse_kl: true\nnonfinite_policy: skip\ninject_nonfinite_steps: [3, 5]\n")
    with open(os.path.join(dirs["train-yaml"], "all-keys.yaml"), "w") as g:
        g.write("""# every key, flow and block styles, anchors, aliases, nulls, .inf
encoder_name_or_path: &m Tests/fixtures/tiny-llama
data: [{file: a.jsonl, instruction: "I", name: a}, {file: 'b.jsonl', instruction: >-
    folded text, alignment_instruction: |
    literal
    text}]
checkpoint_dir: runs/x
checkpoint_file: null
only_load_model: false
pooling: weightedmean
attention: causal
log_interval: 2
skip_malformed_lines: yes
drop_last: true
sample_with_replacement: true
cl_weight: 1
gen_weight: 0.5
kl_weight: 2e0
gc_reference_weighting: false
learning_rate: 1.0e-4
min_learning_rate: 0
warmpup_proportion: 0.1
warmup_proportion: 0.1
is_cosine_annealing: false
global_batch_size: 8
gc_chunk_size: ~
temperature: 0.05
beta: 0.1
label_smoothing: 0.0
loss_type: SupConLoss
gen_loss_type: kto_pair
use_gen: true
use_kl: true
use_miner: false
is_distance: false
pos_per_sample: 2
neg_per_sample: 3
max_seq_length: 0x40
grad_norm_clip: 0
weight_decay: 0.01
max_epochs: 2
max_steps: .inf
checkpoint_interval: 1
seed: 0
loar_r: 8
lora_alpha: 16
dropout: 0.0
encoder_lora_target_modules: [q_proj, v_proj]
nonfinite_policy: stop
inject_nonfinite_steps: 4
activation_checkpointing: true
devices: 8
strategy: fsdp
unknwon_key: 1
""")
    for d in dirs.values():
        print(d, len(os.listdir(d)), "files", sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d)), "bytes")


def main():
    import sys
    if "--train-only" in sys.argv:
        train_seeds()
        return
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    dirs = {t: os.path.join(OUT, t) for t in ["gguf", "gguf-tokenizer", "safetensors", "config", "tokenizer-json",
                                               "encode-smollm2", "encode-spm", "model-gguf"]}
    for d in dirs.values():
        os.makedirs(d)

    # GGUF: SmolLM2 cut, SPM cut, 64 KB head.
    _, smol = read_kvs(SMOL)
    smol_cut = cut_vocab(smol, NTOK)
    write_gguf(os.path.join(dirs["gguf"], "smollm2-cut.gguf"), smol_cut, tiny_tensors())
    write_gguf(os.path.join(dirs["gguf-tokenizer"], "smollm2-cut.gguf"), smol_cut)
    _, spm = read_kvs(SPM)
    spm_cut = cut_vocab(spm, NTOK)
    write_gguf(os.path.join(dirs["gguf"], "spm-cut.gguf"), spm_cut, tiny_tensors()[:3], align=64)
    write_gguf(os.path.join(dirs["gguf-tokenizer"], "spm-cut.gguf"), spm_cut)
    head, fit = read_kvs(SMOL, limit=64 << 10)
    end = fit[-1][3]
    head = bytearray(head[:end])
    struct.pack_into("<QQ", head, 8, 0, len(fit))
    with open(os.path.join(dirs["gguf"], "smollm2-head64k.gguf"), "wb") as f:
        f.write(head)

    tiny_llama_gguf(os.path.join(dirs["model-gguf"], "tiny-llama.gguf"))

    # safetensors
    shutil.copy(os.path.join(ROOT, "Tests/fixtures/safetensors/tiny.safetensors"), dirs["safetensors"])
    st_file(os.path.join(dirs["safetensors"], "mixed.safetensors"), [
        ("a.weight", "F32", [2, 3], struct.pack("<6f", *range(6))),
        ("b.bias", "F16", [4], struct.pack("<4e", 1, 2, 3, 4)),
        ("c", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0x4000)),
        ("empty", "F32", [0, 4], b""),
    ], meta={"format": "pt"})

    # config.json
    for p in sorted(glob.glob(os.path.join(ROOT, "Tests/fixtures/tiny-*/config.json"))):
        shutil.copy(p, os.path.join(dirs["config"], os.path.basename(os.path.dirname(p)) + ".json"))

    # tokenizer.json
    shutil.copy(os.path.join(ROOT, "Tests/fixtures/tiny-llama/tokenizer.json"),
                os.path.join(dirs["tokenizer-json"], "tiny-llama.json"))
    j = json.load(open(os.path.join(ROOT, "Tests/fixtures/tokenizer/tokenizer-smollm2/tokenizer.json")))
    vocab = {k: v for k, v in j["model"]["vocab"].items() if v < NTOK}
    j["model"]["vocab"] = vocab
    j["model"]["merges"] = [m for m in j["model"]["merges"]
                            if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    j["added_tokens"] = [a for a in j["added_tokens"] if a["id"] < NTOK]
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, j["pre_tokenizer"]]}
    with open(os.path.join(dirs["tokenizer-json"], "smollm2-cut.json"), "w") as f:
        json.dump(j, f, ensure_ascii=False)
    spm_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        spm_vocab["<0x%02X>" % b] = len(spm_vocab)
    for t in ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "abc", "\u2581abc", "日", "本", "日本"]:
        spm_vocab[t] = len(spm_vocab)
    spm_json = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": t, "special": True, "lstrip": False, "rstrip": False,
                          "single_word": False, "normalized": False} for i, t in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": None,
        "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True,
                  "vocab": spm_vocab,
                  "merges": ["\u2581 a", "a b", "\u2581a b", "ab c", "\u2581ab c", "日 本"]},
    }
    with open(os.path.join(dirs["tokenizer-json"], "spm-style.json"), "w") as f:
        json.dump(spm_json, f, ensure_ascii=False)
    ms = dict(spm_json)
    ms["normalizer"] = None
    ms["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}
    with open(os.path.join(dirs["tokenizer-json"], "metaspace.json"), "w") as f:
        json.dump(ms, f, ensure_ascii=False)

    # texts
    with open(os.path.join(ROOT, "Tests/fixtures/tokenizer/corpus.jsonl")) as f:
        for i, line in enumerate(f):
            raw = base64.b64decode(json.loads(line)["b64"])[:4096]
            for t in ("encode-smollm2", "encode-spm"):
                with open(os.path.join(dirs[t], "corpus-%02d.txt" % i), "wb") as g:
                    g.write(raw)
    for d in dirs.values():
        print(d, len(os.listdir(d)), "files", sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d)), "bytes")
    train_seeds()


if __name__ == "__main__":
    main()
