#!/usr/bin/env python3
"""Tiny random embedders and their reference embeddings (float32), for the embedder-profile tests.

Writes Tests/fixtures/generated/embedders/<name>/ (run by scripts/make_generated_fixtures.sh, i.e. `make fixtures`):

sentence-transformers directories (SentenceTransformer(modules=[Transformer, Pooling(, Normalize)]).save; the
Transformer's weights are saved from the base model class: no "model." prefix, no lm_head), expected.json =
SentenceTransformer(dir).encode(texts, prompt_name=..., normalize_embeddings=True) on padded batches:
  st-qwen3    Qwen3 (q/k norm, head_dim 24), last-token pooling, Normalize, a tokenizer whose post-processor
              appends <|endoftext|> (pad <|endoftext|>, eos <|im_end|>, left padding, as Qwen3-Embedding),
              prompts {query: "Instruct: ...\\nQuery:", document: ""}, max_seq_length 48
  st-mistral  Mistral, mean pooling with include_prompt false, no Normalize, BOS <s> by the post-processor,
              prompts {query: "query: ", document: "passage: "}, right padding
  st-llama    Llama, weightedmean pooling written with the LEGACY keys (pooling_mode_weightedmean_tokens,
              word_embedding_dimension), default_prompt_name "classification", Normalize
GenC-format models (no sentence-transformers files; the reference is computed here from GenC's rules,
hieum98/GenC genc/data/base.py and genc/model/genc.py): the text is
  bos + user_bos + "{instruction}\\n" + text + eot + eos, tokenised with add_special_tokens=False and truncated to
  max_length; prompt_length = len(tokenizer(bos + user_bos + "{instruction}\\n", add_special_tokens=False));
  bidirectional attention (4-D mask: every real token sees every real token), right padding, mean pooling over
  the real tokens from prompt_length on, L2-normalised.
  genc-llama3   Llama with the Llama-3 chat tokens (<|begin_of_text|> <|start_header_id|> <|end_header_id|>
                <|eot_id|> <|end_of_text|>): bos/user_bos/eot/eos as GenC's SPECILA_TOKENS['llama']
  genc-mistral  Mistral with <s> </s> ("[INST]" is text, as in Mistral-7B-v0.1): SPECILA_TOKENS['mistral']

Other presets, each on a tiny Mistral (BOS <s> added by the post-processor, eos </s>), with a reference written
here from the upstream encode code's rules (run per text, unpadded):
  e5-mistral  e5-mistral-7b-instruct's README: queries "Instruct: {task}\nQuery: {q}", documents bare;
              tokenizer(max_length - 1, truncation) + [eos]; causal; last token; L2-normalised
  gritlm      GritLM.encode: instruction + text (instruction "<|user|>\n{i}\n<|embed|>\n", "<|embed|>\n" without
              one), tokenizer(..., add_special_tokens=True); bidirectional; mean with the first
              len(tokenizer(instruction)["input_ids"]) positions masked; L2-normalised
  llm2vec     LLM2Vec: "{instruction.strip()} {text}" (text alone without instruction) with BOS; bidirectional;
              mean over the last len(tokenizer(text, add_special_tokens=False)) tokens (embed_mask); L2-normalised

Every tokenizer is a byte-level BPE trained here (tokenizers' BpeTrainer, 320 tokens + the special ones) on the
fixture texts, so words merge and prompt/text boundaries are real BPE boundaries.
Usage: python3 scripts/make_embedder_fixtures.py
"""
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_family_fixtures import perturb_norms_and_biases  # noqa: E402
from make_parity_fixtures import f32list  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "fixtures" / "generated" / "embedders"
SEED = 1234

QUERIES = ["how do lighthouses work?", "what is the boiling point of water", "a", ""]
DOCS = ["A lighthouse is a tower with a bright lamp that guides ships at night along dangerous coasts.",
        "Water boils at 100 degrees Celsius at sea level.",
        "Ships use charts and lights.",
        "The quick brown fox jumps over the lazy dog " * 6]  # longer than max_seq_length: truncated
CORPUS = QUERIES + DOCS + ["Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
                           "query: passage: Represent this sentence for classification:"]
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
COMMON = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
              max_position_embeddings=128, initializer_range=0.2, num_hidden_layers=2, hidden_act="silu")


def train_tokenizer(specials, bos=None, eos_post=None):
    """Byte-level BPE with `specials` as added special tokens; the post-processor adds bos before and/or eos_post
    after a single text (TemplateProcessing), as real tokenizer.json files do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320 + len(specials), special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 3, trainer)
    single = ([f"{bos}:0"] if bos else []) + ["$A:0"] + ([f"{eos_post}:0"] if eos_post else [])
    pair = single + ["$B:1"]
    st = [(t, tok.token_to_id(t)) for t in (bos, eos_post) if t]
    tok.post_processor = processors.TemplateProcessing(single=" ".join(single), pair=" ".join(pair), special_tokens=st)
    return tok


def hf_tokenizer(tok, **kw):
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kw)


def tiny_model(model_type, vocab, extra, seed):
    from transformers import AutoConfig, AutoModelForCausalLM
    torch.manual_seed(seed)
    cfg = AutoConfig.for_model(model_type, vocab_size=vocab, **COMMON, **extra)
    cfg._attn_implementation = "eager"
    m = AutoModelForCausalLM.from_config(cfg).float().eval()
    perturb_norms_and_biases(m, seed + 7)
    return m


def save_hf(model, tokenizer, d):
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    tokenizer.save_pretrained(d)
    cj = json.loads((d / "config.json").read_text())
    cj.pop("_attn_implementation", None)
    (d / "config.json").write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")


def clean(d):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


def make_st(name, model_type, extra, tok_kw, specials, bos, eos_post, pooling, include_prompt, normalize, prompts,
            default_prompt_name, max_seq_length, cases, legacy_pooling=False, seed=0):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    tok = train_tokenizer(specials, bos=bos, eos_post=eos_post)
    hft = hf_tokenizer(tok, **tok_kw)
    model = tiny_model(model_type, tok.get_vocab_size(), extra, SEED + seed)
    d = OUT / name
    clean(d)
    with tempfile.TemporaryDirectory() as tmp:
        save_hf(model, hft, Path(tmp))
        tr = Transformer(tmp, max_seq_length=max_seq_length, model_kwargs={"attn_implementation": "eager"})
        mods = [tr, Pooling(64, pooling_mode=pooling, include_prompt=include_prompt)] + ([Normalize()] if normalize else [])
        st = SentenceTransformer(modules=mods, prompts=prompts, default_prompt_name=default_prompt_name,
                                 similarity_fn_name="cosine", device="cpu")
        st.save(str(d))
    if legacy_pooling:
        pc = d / "1_Pooling" / "config.json"
        c = json.loads(pc.read_text())
        legacy = {"word_embedding_dimension": c["embedding_dimension"]}
        for k, mode in [("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                        ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                        ("pooling_mode_weightedmean_tokens", "weightedmean"), ("pooling_mode_lasttoken", "lasttoken")]:
            legacy[k] = c["pooling_mode"] == mode
        legacy["include_prompt"] = c.get("include_prompt", True)
        pc.write_text(json.dumps(legacy, indent=2) + "\n")
    names = sorted(p.name for p in d.rglob("*") if p.is_file())
    assert "model.safetensors" in names and "modules.json" in names, names
    from safetensors import safe_open
    with safe_open(str(d / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any(k.startswith("model.") or k.startswith("lm_head") for k in keys), keys[:5]
    st = SentenceTransformer(str(d), device="cpu", model_kwargs={"attn_implementation": "eager"})
    torch.set_num_threads(1)
    exp = {"name": name, "cases": []}
    for case in cases:
        kw = {k: v for k, v in case.items() if k in ("prompt_name", "prompt")}
        emb = st.encode(case["texts"], batch_size=len(case["texts"]), normalize_embeddings=True, convert_to_numpy=True, **kw)
        exp["cases"].append(dict(case, embeddings=[f32list(torch.from_numpy(e)) for e in emb]))
        if case.get("truncate_dim"):
            t = st.encode(case["texts"], normalize_embeddings=True, truncate_dim=case["truncate_dim"], **kw)
            exp["cases"][-1]["truncated_embeddings"] = [f32list(torch.from_numpy(e)) for e in t]
    exp["tokens"] = {t: st.tokenize([t])["input_ids"][0].tolist() for t in QUERIES[:2]}
    (d / "expected.json").write_text(json.dumps(exp) + "\n")
    return f"{name}: {len(keys)} tensors, {len(cases)} cases"


def genc(name, model_type, extra, specials, fmt, seed):
    tok = train_tokenizer(specials)
    hft = hf_tokenizer(tok, bos_token=fmt["bos"], eos_token=fmt["eos"], pad_token=fmt["eos"])
    model = tiny_model(model_type, tok.get_vocab_size(), extra, SEED + seed)
    d = OUT / name
    clean(d)
    save_hf(model, hft, d)
    max_length = 64
    prompt_fmt = fmt["bos"] + fmt["user_bos"] + "{prompt}" + "\n"
    example_fmt = prompt_fmt + "{example}" + fmt["eot"] + fmt["eos"]
    torch.set_num_threads(1)
    exp = {"name": name, "max_length": max_length, "cases": []}
    for instruction, texts in [(INSTRUCTION, QUERIES[:3]), ("", DOCS), ("Represent the document", DOCS[:2] + [""])]:
        ids, plen = [], []
        for t in texts:
            x = hft(example_fmt.format(prompt=instruction, example=t), add_special_tokens=False, truncation=True,
                    max_length=max_length)["input_ids"]
            p = len(hft(prompt_fmt.format(prompt=instruction), add_special_tokens=False)["input_ids"])
            assert p < len(x)
            ids.append(x)
            plen.append(p)
        L = max(map(len, ids))
        pad = hft.pad_token_id
        batch = torch.tensor([x + [pad] * (L - len(x)) for x in ids])
        attn = torch.tensor([[1] * len(x) + [0] * (L - len(x)) for x in ids])
        keys = torch.where(attn.bool(), 0.0, torch.finfo(torch.float32).min)
        mask4 = keys[:, None, None, :].expand(len(ids), 1, L, L).contiguous()
        with torch.no_grad():
            h = model.model(input_ids=batch, attention_mask=mask4).last_hidden_state
        m = attn.clone()
        for i, p in enumerate(plen):
            m[i, :p] = 0
        reps = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
        reps = torch.nn.functional.normalize(reps, dim=-1)
        exp["cases"].append({"instruction": instruction, "texts": texts, "ids": ids, "prompt_lengths": plen,
                             "embeddings": [f32list(r) for r in reps]})
    (d / "expected.json").write_text(json.dumps(exp) + "\n")
    return f"{name}: prompt lengths {[c['prompt_lengths'] for c in exp['cases']]}"


def preset_reference(name, seed):
    """A tiny Mistral and the reference embeddings of the e5 / gritlm / llm2vec rules (see the docstring)."""
    tok = train_tokenizer(["<unk>", "<s>", "</s>"], bos="<s>")
    hft = hf_tokenizer(tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    model = tiny_model("mistral", tok.get_vocab_size(), dict(rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=None,
                                                           tie_word_embeddings=False), SEED + seed)
    d = OUT / name
    clean(d)
    save_hf(model, hft, d)
    max_length = 64
    torch.set_num_threads(1)

    def run(ids, bidirectional):
        x = torch.tensor([ids])
        mask = torch.zeros(1, 1, len(ids), len(ids)) if bidirectional else torch.ones(1, len(ids), dtype=torch.long)
        with torch.no_grad():
            return model.model(input_ids=x, attention_mask=mask).last_hidden_state[0]

    exp = {"name": name, "max_length": max_length, "cases": []}
    for instruction, texts, is_query in [(INSTRUCTION, QUERIES[:3], True), (INSTRUCTION, DOCS, False), ("", DOCS[:2], True)]:
        reps = []
        for t in texts:
            if name == "e5-mistral":
                s = f"Instruct: {instruction}\nQuery: {t}" if is_query else t
                ids = hft(s, max_length=max_length - 1, truncation=True)["input_ids"] + [hft.eos_token_id]
                r = run(ids, False)[-1]
            elif name == "gritlm":
                ins = f"<|user|>\n{instruction}\n<|embed|>\n" if instruction else "<|embed|>\n"
                ids = hft(ins + t, max_length=max_length, truncation=True)["input_ids"]
                p = len(hft(ins, max_length=max_length, truncation=True)["input_ids"])
                r = run(ids, True)[p:].mean(0) if p < len(ids) else torch.zeros(64)
            else:  # llm2vec
                s = f"{instruction.strip()} {t}" if instruction else t
                ids = hft(s, max_length=max_length, truncation=True)["input_ids"]
                k = min(len(hft(t, add_special_tokens=False)["input_ids"]), len(ids))
                r = run(ids, True)[len(ids) - k:].mean(0) if k else torch.zeros(64)
            reps.append(f32list(torch.nn.functional.normalize(r, dim=-1)))
        exp["cases"].append({"instruction": instruction, "texts": texts, "is_query": is_query, "embeddings": reps})
    (d / "expected.json").write_text(json.dumps(exp) + "\n")
    return f"{name}: {len(exp['cases'])} cases"


def main():
    torch.set_num_threads(1)
    clean(OUT)
    summary = []
    q3 = "Instruct: " + INSTRUCTION + "\nQuery:"
    summary.append(make_st(
        "st-qwen3", "qwen3", dict(head_dim=24, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                                  attention_bias=False, use_sliding_window=False),
        dict(eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|endoftext|>", "lasttoken", True, True,
        {"query": q3, "document": ""}, None, 48,
        [dict(texts=QUERIES, prompt_name="query", truncate_dim=16), dict(texts=DOCS, prompt_name="document"),
         dict(texts=DOCS[:2], prompt="Represent: ")], seed=1))
    summary.append(make_st(
        "st-mistral", "mistral", dict(rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=None, tie_word_embeddings=False),
        dict(bos_token="<s>", eos_token="</s>", pad_token="</s>", padding_side="right"),
        ["<unk>", "<s>", "</s>"], "<s>", None, "mean", False, False,
        {"query": "query: ", "document": "passage: "}, None, 48,
        [dict(texts=QUERIES, prompt_name="query"), dict(texts=DOCS, prompt_name="document"),
         dict(texts=QUERIES[:2] + ["x"], prompt="Given a query, find passages: ")], seed=2))
    summary.append(make_st(
        "st-llama", "llama", dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
        dict(bos_token="<s>", eos_token="</s>", pad_token="</s>", padding_side="right"),
        ["<unk>", "<s>", "</s>"], "<s>", None, "weightedmean", True, True,
        {"classification": "Represent this sentence for classification: ", "query": "query: "}, "classification", 48,
        [dict(texts=DOCS), dict(texts=QUERIES[:3], prompt_name="query")], legacy_pooling=True, seed=3))
    summary.append(genc("genc-llama3", "llama", dict(rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
                        ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
                        {"bos": "<|begin_of_text|>", "user_bos": "<|start_header_id|>user<|end_header_id|>\n\n",
                         "eot": "<|eot_id|>\n", "eos": "<|end_of_text|>"}, seed=4))
    summary.append(genc("genc-mistral", "mistral", dict(rope_theta=10000.0, rms_norm_eps=1e-5, sliding_window=None,
                                                         tie_word_embeddings=False),
                        ["<unk>", "<s>", "</s>"], {"bos": "<s>", "user_bos": "[INST]", "eot": "", "eos": "</s>"}, seed=5))
    for i, name in enumerate(["e5-mistral", "gritlm", "llm2vec"]):
        summary.append(preset_reference(name, 6 + i))
    print("fixtures written under", OUT)
    for s in summary:
        print("  " + s)


if __name__ == "__main__":
    main()
