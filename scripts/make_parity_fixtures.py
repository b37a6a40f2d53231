#!/usr/bin/env python3
"""Reference fixtures for libullme parity tests, computed with Hugging Face transformers (float32).

Deterministic (fixed seeds, single-threaded torch, eager attention). Writes small files that are
committed to the repository:

  Tests/fixtures/tiny-llama/          random LlamaConfig (hidden 64, 2 layers, 4 heads, 2 kv heads
                                      = GQA, intermediate 128, vocab 256, max_pos 128, rope_theta 1e4,
                                      rms_eps 1e-5, untied embeddings), no rope scaling
  Tests/fixtures/tiny-llama-rope/     same shape, rope_scaling llama3 (factor 8, low 1, high 4,
                                      original_max_position_embeddings 32), tied embeddings
  Tests/fixtures/tiny-llama-linear/   same shape, rope_scaling linear factor 2, untied
      each: config.json, model.safetensors (float32), tokenizer.json (byte-level, id = byte value,
      no special tokens; only so the directory is a complete HF model dir), expected.json
  Tests/fixtures/smollm2/expected.json  SmolLM2-135M-Instruct.Q4_1.gguf as loaded (dequantised to
                                      float32) by transformers: token ids, pooled embeddings, rows.

Tiny-model expected.json: a batch of 3 sequences of lengths 7, 12, 3 run right-padded in one
forward pass. Only real (non-padded) positions are stored:
  ids[b]      the unpadded ids of sequence b;  lengths;  pad_id (the value used for padding)
  causal.hidden[b][t][:]         model.model(...).last_hidden_state (after the final RMSNorm)
  causal.logits[b][t][:]         model(...).logits, row t scores the token after ids[b][:t+1]
  bidirectional.hidden / .logits same with full attention among the real tokens of each sequence.
Bidirectional attention is obtained with a 4-D additive float mask (B,1,L,L): 0 where the key is a
real token, torch.finfo(float32).min where the key is padding (every query row sees every real key).
The script checks that this equals model.config.is_causal = False with the ordinary 2-D mask.

config.json carries both the transformers-5 key `rope_parameters` and the classic (4.x) keys
`rope_theta` / `rope_scaling`, as real checkpoints on disk have the latter; the script reloads each
directory with from_pretrained and checks the reloaded model reproduces the stored values.

SmolLM2 expected.json, one entry per text:
  text, instruction, is_query, formatted   the exact string embedded: with no instruction the text
                                           alone; else "{instruction}\\n{text}" (query) or
                                           "{instruction}\\nCandidate:\\n{text}" (candidate)
  ids        tokenizer(formatted)["input_ids"] with the tokenizer's default special tokens
             (SmolLM2: add_bos_token is False, so no BOS is added; see top-level add_bos)
  embed_ids  the ids actually run through the model: = ids, except an empty result becomes
             [bos_token_id] (ullme.h: "An empty text embeds its formatted prompt (BOS alone ...)")
  causal, bidirectional: the embedding = mean over ALL real tokens of embed_ids (each text is run
             alone, batch of 1, so there is no padding; equivalently the masked mean over the real
             positions of a right-padded batch) of the final-norm hidden states
             (model.model(...).last_hidden_state), then divided by its L2 norm. 576 floats each.
  For two texts also rows: hidden_causal / hidden_bidirectional = first 4 rows of the final hidden
  states, logits_top5 = for each of the first 4 rows (causal), the 5 largest logits: ids and values.
The engine must match embeddings with cosine >= 0.9999.

Floats are stored with 9 significant digits (exact float32 round trip).
Usage: python3 scripts/make_parity_fixtures.py [--only tiny|smollm2] [--model PATH.gguf]
"""
import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests" / "fixtures"
SEED = 1234


def f32list(a):
    """Nested lists of floats with 9 significant digits (float32 round-trips exactly)."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(f"{float(a):.9g}")
    return [f32list(x) for x in a]


def dump(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    path.write_text(s + "\n", encoding="utf-8")
    return len(s.encode("utf-8"))


# ----------------------------------------------------------------------------- tiny llamas
TINY_BASE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=256, max_position_embeddings=128, rope_theta=10000.0,
                 rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=None,
                 hidden_act="silu", attention_bias=False, mlp_bias=False,
                 initializer_range=0.2)  # large init: sharp attention, so mask/rope bugs show
TINY_VARIANTS = [
    ("tiny-llama", dict(tie_word_embeddings=False, rope_scaling=None)),
    ("tiny-llama-rope", dict(tie_word_embeddings=True,
                             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    ("tiny-llama-linear", dict(tie_word_embeddings=False, rope_scaling={"rope_type": "linear", "factor": 2.0})),
]
LENGTHS = [7, 12, 3]
PAD_ID = 0


def byte_tokenizer_json():
    """A byte-level BPE with no merges: token id == byte value (GPT-2 byte-to-unicode alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte2uni = dict(zip(bs, (chr(c) for c in cs)))
    vocab = {byte2uni[b]: b for b in range(256)}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": []},
    }


def bidir_mask(attn2d):
    """(B,L) 0/1 -> (B,1,L,L) additive float mask: 0 for real keys, finfo.min for padded keys."""
    B, L = attn2d.shape
    neg = torch.finfo(torch.float32).min
    keys = torch.where(attn2d.bool(), torch.tensor(0.0), torch.tensor(neg))  # (B,L)
    return keys[:, None, None, :].expand(B, 1, L, L).contiguous()


def make_batch(low):
    """The right-padded batch of LENGTHS sequences with ids drawn from [low, 256) (seeded), its 2-D mask and
    the unpadded id lists."""
    g = torch.Generator().manual_seed(SEED + 1)
    L = max(LENGTHS)
    ids = torch.full((len(LENGTHS), L), PAD_ID, dtype=torch.long)
    attn = torch.zeros((len(LENGTHS), L), dtype=torch.long)
    seqs = []
    for b, n in enumerate(LENGTHS):
        s = torch.randint(low, 256, (n,), generator=g)
        ids[b, :n] = s
        attn[b, :n] = 1
        seqs.append(s.tolist())
    return ids, attn, seqs


def run_tiny(model, ids, attn):
    out = {}
    with torch.no_grad():
        # causal: the ordinary 2-D padding mask
        h = model.model(input_ids=ids, attention_mask=attn).last_hidden_state
        lg = model(input_ids=ids, attention_mask=attn).logits
        out["causal"] = (h, lg)
        m4 = bidir_mask(attn)
        h = model.model(input_ids=ids, attention_mask=m4).last_hidden_state
        lg = model(input_ids=ids, attention_mask=m4).logits
        out["bidirectional"] = (h, lg)
    return out


def max_real_diff(a, b, lengths):
    return max(float((a[i, :n] - b[i, :n]).abs().max()) for i, n in enumerate(lengths))


def make_tiny(summary):
    from transformers import LlamaConfig, LlamaForCausalLM
    for name, var in TINY_VARIANTS:
        var = copy.deepcopy(var)
        rope_scaling = copy.deepcopy(var["rope_scaling"])  # transformers adds rope_theta into it
        torch.manual_seed(SEED)
        cfg = LlamaConfig(**TINY_BASE, **var)
        cfg._attn_implementation = "eager"
        model = LlamaForCausalLM(cfg).float().eval()
        with torch.no_grad():  # non-trivial norm weights, so a missing norm scale shows
            for n_, p in model.named_parameters():
                if n_.endswith("norm.weight"):
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
        ids, attn, seqs = make_batch(low=0)
        res = run_tiny(model, ids, attn)

        # check: the 4-D mask equals config.is_causal = False with the 2-D mask
        model.config.is_causal = False
        with torch.no_grad():
            h_nc = model.model(input_ids=ids, attention_mask=attn).last_hidden_state
        model.config.is_causal = True
        d_nc = max_real_diff(res["bidirectional"][0], h_nc, LENGTHS)
        assert d_nc < 1e-5, f"{name}: 4-D mask != is_causal=False ({d_nc})"
        # check: each sequence alone (no padding) gives the same values
        d_alone = 0.0
        for b, n in enumerate(LENGTHS):
            alone = run_tiny(model, ids[b:b + 1, :n], attn[b:b + 1, :n])
            for mode in ("causal", "bidirectional"):
                d_alone = max(d_alone, float((alone[mode][0][0] - res[mode][0][b, :n]).abs().max()))
        assert d_alone < 1e-5, f"{name}: padded batch != alone ({d_alone})"
        # check: causal != bidirectional (the fixture discriminates the two)
        d_modes = max_real_diff(res["causal"][0], res["bidirectional"][0], LENGTHS)
        assert d_modes > 1e-2, f"{name}: causal and bidirectional too close ({d_modes})"

        d = FIX / name
        d.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        # add the classic keys real checkpoints carry
        cj = json.loads((d / "config.json").read_text())
        cj.pop("_attn_implementation", None)
        cj.pop("is_causal", None)
        cj["rope_theta"] = TINY_BASE["rope_theta"]
        cj["rope_scaling"] = rope_scaling
        (d / "config.json").write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")
        (d / "tokenizer.json").write_text(json.dumps(byte_tokenizer_json(), ensure_ascii=False) + "\n", encoding="utf-8")
        # reload check
        re_m = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        re_res = run_tiny(re_m, ids, attn)
        for mode in ("causal", "bidirectional"):
            for k in (0, 1):
                dd = max_real_diff(re_res[mode][k], res[mode][k], LENGTHS)
                assert dd < 1e-6, f"{name}: reloaded model differs ({mode}, {dd})"

        exp = {"model": name, "lengths": LENGTHS, "pad_id": PAD_ID, "ids": seqs,
               "hidden_size": 64, "vocab_size": 256,
               "rope_scaling": rope_scaling, "tie_word_embeddings": var["tie_word_embeddings"]}
        for mode in ("causal", "bidirectional"):
            h, lg = res[mode]
            exp[mode] = {"hidden": [f32list(h[b, :n]) for b, n in enumerate(LENGTHS)],
                         "logits": [f32list(lg[b, :n]) for b, n in enumerate(LENGTHS)]}
        size = dump(d / "expected.json", exp)
        assert size < 2_000_000
        summary.append(f"{name}: tie={var['tie_word_embeddings']} rope_scaling={rope_scaling} "
                       f"expected.json {size / 1e3:.0f} kB; 4-D mask vs is_causal=False {d_nc:.1e}; "
                       f"batch vs alone {d_alone:.1e}; causal vs bidir {d_modes:.2f}")


# ----------------------------------------------------------------------------- SmolLM2
INSTR = "Given a web search query, retrieve relevant passages that answer the query"
LONG = (
    "The history of the lighthouse is a history of trade, of weather and of the people who kept the lamps "
    "burning through long winter nights. In the ancient world the Pharos of Alexandria stood for more than "
    "a thousand years, a tower of white stone whose fire could be seen far out at sea; travellers described "
    "it with wonder, and its name became the word for lighthouse in several languages. Medieval harbours "
    "relied on simpler beacons: a fire on a hill, a lantern in a church tower, a monk who rang a bell when "
    "fog rolled in from the water. The great age of lighthouse building came with the growth of ocean "
    "shipping in the eighteenth and nineteenth centuries. Engineers such as John Smeaton and Robert "
    "Stevenson learned to build towers on bare rocks swept by waves, dovetailing granite blocks so that the "
    "sea could not pull them apart. Augustin Fresnel, a French physicist, designed a lens made of concentric "
    "rings of glass prisms that gathered the light of a single lamp into a beam visible for twenty miles or "
    "more. Keepers trimmed wicks, polished brass and glass, wound the clockwork that turned the lens, and "
    "wrote the weather into their logbooks every few hours. Many of them lived with their families on "
    "islands where supply boats came only when the sea allowed. Electric lamps, radio beacons and finally "
    "satellite navigation changed all of this: most lights are automatic now, watched from a distance, and "
    "the old keepers' cottages have become museums, guest houses or ruins. Yet sailors still look for the "
    "familiar flash on a dark coast, and the towers remain among the most loved buildings by the sea."
)
SMOL_TEXTS = [
    dict(text=""),
    dict(text="Hello world"),
    dict(text="The quick brown fox jumps over the lazy dog."),
    dict(text=LONG),
    dict(text="Les modèles de langage transforment la recherche d'information : une requête, des documents, un classement."),
    dict(text="今天天气很好，我们去公园散步吧。"),
    dict(text="Привет, мир! こんにちは世界 🌍✨"),
    dict(text="what is the capital of France?", instruction=INSTR, is_query=True),
    dict(text="Paris is the capital and most populous city of France.", instruction=INSTR, is_query=False),
    dict(text="def f(x):\n    return x * 2  # double\n\ttabs\tand  spaces"),
    dict(text="3.14159 2024-01-01 $1,000,000 100% e=mc^2"),
    dict(text="   leading and trailing spaces   "),
]
ROW_TEXTS = [2, 7]  # indices of the texts that also get hidden rows and logits top-5


def fmt(instruction, text, is_query):
    if not instruction:
        return text
    return f"{instruction}\n{text}" if is_query else f"{instruction}\nCandidate:\n{text}"


def make_smollm2(summary, gguf_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        sys.exit(f"missing {gguf_path}: run scripts/fetch_models.sh first")
    d, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    add_bos = bool(getattr(tok, "add_bos_token", False))
    probe = tok("a")["input_ids"]
    add_bos = add_bos or (tok.bos_token_id is not None and probe[:1] == [tok.bos_token_id])
    entries = []
    max_nc = 0.0
    for i, t in enumerate(SMOL_TEXTS):
        instruction, is_query = t.get("instruction", ""), t.get("is_query", True)
        formatted = fmt(instruction, t["text"], is_query)
        ids = tok(formatted)["input_ids"]
        embed_ids = ids if ids else [tok.bos_token_id]
        x = torch.tensor([embed_ids])
        n = len(embed_ids)
        e = {"text": t["text"], "instruction": instruction, "is_query": is_query, "formatted": formatted,
             "ids": ids, "embed_ids": embed_ids}
        with torch.no_grad():
            hs = {}
            for mode in ("causal", "bidirectional"):
                if mode == "causal":
                    h = model.model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0]
                else:
                    h = model.model(input_ids=x, attention_mask=torch.zeros(1, 1, n, n)).last_hidden_state[0]
                hs[mode] = h
                pooled = h.mean(dim=0)  # mean over the n real tokens
                emb = pooled / pooled.norm()
                e[mode] = f32list(emb)
            model.config.is_causal = False
            h_nc = model.model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0]
            model.config.is_causal = True
            max_nc = max(max_nc, float((h_nc - hs["bidirectional"]).abs().max()))
            if i in ROW_TEXTS:
                e["hidden_causal"] = f32list(hs["causal"][:4])
                e["hidden_bidirectional"] = f32list(hs["bidirectional"][:4])
                lg = model(input_ids=x).logits[0, :4]
                v, ix = torch.topk(lg, 5, dim=-1)
                e["logits_top5"] = {"ids": ix.tolist(), "values": f32list(v)}
        entries.append(e)
    assert max_nc < 1e-4, f"smollm2: 4-D mask != is_causal=False ({max_nc})"
    # a right-padded batch with mask-weighted mean gives the same embeddings (documents the pooling)
    with torch.no_grad():
        batch = [entries[k]["embed_ids"] for k in (1, 2, 3)]
        L = max(map(len, batch))
        ids = torch.full((3, L), tok.pad_token_id if tok.pad_token_id is not None else 0)
        attn = torch.zeros((3, L))
        for b, s in enumerate(batch):
            ids[b, :len(s)] = torch.tensor(s)
            attn[b, :len(s)] = 1
        h = model.model(input_ids=ids, attention_mask=bidir_mask(attn)).last_hidden_state
        pooled = (h * attn[..., None]).sum(1) / attn.sum(1, keepdim=True)
        pooled = pooled / pooled.norm(dim=-1, keepdim=True)
        for b, k in enumerate((1, 2, 3)):
            cos = float(pooled[b] @ torch.tensor(entries[k]["bidirectional"]))
            assert cos > 0.99999, f"padded-batch pooling differs for text {k}: cos {cos}"
    exp = {"model": name, "dtype": "float32 (transformers GGUF dequantisation)",
           "transformers": __import__("transformers").__version__, "torch": torch.__version__,
           "hidden_size": model.config.hidden_size, "vocab_size": model.config.vocab_size,
           "add_bos": add_bos, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "pad_token_id": tok.pad_token_id,
           "pooling": "mean over all real tokens of embed_ids of last_hidden_state (after final norm), then L2-normalised",
           "texts": entries}
    size = dump(FIX / "smollm2" / "expected.json", exp)
    assert size < 2_000_000
    ntok = [len(e["ids"]) for e in entries]
    summary.append(f"smollm2: {len(entries)} texts, tokens {ntok}, add_bos={add_bos}, "
                   f"expected.json {size / 1e3:.0f} kB; 4-D mask vs is_causal=False {max_nc:.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["tiny", "smollm2"])
    cache = Path(os.environ.get("ULLME_CACHE", Path.home() / ".cache" / "ullme"))
    ap.add_argument("--model", default=str(cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    summary = []
    if args.only in (None, "tiny"):
        make_tiny(summary)
    if args.only in (None, "smollm2"):
        make_smollm2(summary, args.model)
    print("fixtures written under", FIX)
    for s in summary:
        print("  " + s)


if __name__ == "__main__":
    main()
