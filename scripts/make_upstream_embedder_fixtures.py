#!/usr/bin/env python3
"""Embeddings of the tiny GritLM- and LLM2Vec-format models computed by the upstream PyPI packages themselves,
each in its own virtual environment, for bindings/python/tests/test_upstream_embedders.py.

    python3 scripts/make_upstream_embedder_fixtures.py     # after scripts/make_embedder_fixtures.py

Writes Tests/fixtures/generated/upstream/{gritlm,llm2vec}.json (and the LLM2Vec adapters beside them). The
models are Tests/fixtures/generated/embedders/{gritlm,llm2vec} (tiny Mistrals with a trained BPE tokenizer);
the texts and instructions are those of their expected.json, embedded as padded batches.
- gritlm 1.0.2 (`pip install --no-deps`: it would pull all of mteb, which encode does not use) in a venv over
  this Python's packages: `GritLM(dir, mode="embedding", pooling_method="mean", attn="bbcc")` with the
  instruction format of GritLM's README (`<|user|>\\n{instruction}\\n<|embed|>\\n`, `<|embed|>\\n` without one).
- llm2vec 0.2.3, which pins transformers <= 4.44.2: a venv with transformers 4.44.2, tokenizers 0.19.1,
  peft 0.12.0 and huggingface-hub 0.24.7 (torch from this Python). Its bidirectional `MistralBiModel`, left
  padding, `skip_instruction=True`, mean pooling; `[instruction, text]` pairs. Twice: the bare model, and the
  two-adapter recipe of LLM2Vec's README (an MNTP LoRA merged into the weights, then a supervised LoRA on
  top), both adapters made by peft 0.12 with seeded random weights and saved for our side to load.
  tokenizers 0.19 cannot read the merges of a tokenizer.json written by tokenizers >= 0.20, so a copy with
  the merges in the old "a b" spelling is given to it (the same tokenizer).
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "Tests" / "fixtures" / "generated" / "embedders"
OUT = ROOT / "Tests" / "fixtures" / "generated" / "upstream"
VENVS = ROOT / "build" / "venvs"
PACKAGES = {
    "gritlm": ["--no-deps", "gritlm==1.0.2"],
    "llm2vec": ["--no-deps", "llm2vec==0.2.3", "transformers==4.44.2", "tokenizers==0.19.1", "peft==0.12.0",
                "huggingface-hub==0.24.7"],
}


def venv_python(name):
    """The venv's python, made (over this interpreter's site-packages) and provisioned when missing."""
    d = VENVS / name
    py = d / "bin" / "python"
    stamp = d / "installed.json"
    if not stamp.exists() or json.loads(stamp.read_text()) != PACKAGES[name]:
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--clear", str(d)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES[name]],
                       check=True)
        stamp.write_text(json.dumps(PACKAGES[name]))
    return str(py)


def cases(name):
    exp = json.loads((MODELS / name / "expected.json").read_text())
    return exp["max_length"], [{k: c[k] for k in ("instruction", "texts", "is_query")} for c in exp["cases"]]


def run_gritlm():
    import torch
    from gritlm import GritLM
    max_length, todo = cases("gritlm")
    m = GritLM(str(MODELS / "gritlm"), mode="embedding", pooling_method="mean", attn="bbcc",
               torch_dtype=torch.float32, attn_implementation="eager", device="cpu")
    for c in todo:
        ins = f"<|user|>\n{c['instruction']}\n<|embed|>\n" if c["instruction"] else "<|embed|>\n"
        c["embeddings"] = m.encode(c["texts"], instruction=ins, max_length=max_length, batch_size=8).tolist()
    return {"package": "gritlm", "max_length": max_length, "runs": [{"adapters": [], "cases": todo}]}


def old_tokenizer(model_dir):
    """The model's tokenizer for tokenizers 0.19 (merges as "a b" strings), as LLM2Vec's models load theirs."""
    from transformers import PreTrainedTokenizerFast
    tj = json.loads((model_dir / "tokenizer.json").read_text())
    tj["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]]
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    path = Path(tempfile.mkdtemp()) / "tokenizer.json"
    path.write_text(json.dumps(tj))
    return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token=cfg["bos_token"], eos_token=cfg["eos_token"],
                                   pad_token=cfg["pad_token"], model_input_names=["input_ids", "attention_mask"])


def random_lora(model, seed, r, alpha, targets, out):
    import torch
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    pm = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets, bias="none"))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".lora_" in n:
                p.copy_(torch.randn_like(p) * 0.15)
    pm.save_pretrained(str(out))
    return pm


def run_llm2vec():
    import torch
    from llm2vec import LLM2Vec
    from llm2vec.models import MistralBiModel
    d = MODELS / "llm2vec"
    max_length, todo = cases("llm2vec")
    tok = old_tokenizer(d)
    tok.padding_side = "left"  # as LLM2Vec.from_pretrained sets it (its pooling requires it)

    def embed(model):
        l2v = LLM2Vec(model.eval(), tok, pooling_mode="mean", max_length=max_length, skip_instruction=True)
        out = []
        for c in todo:
            inputs = [[c["instruction"], t] for t in c["texts"]] if c["instruction"] else c["texts"]
            out.append({**c, "embeddings": l2v.encode(inputs, batch_size=8, show_progress_bar=False).tolist()})
        return out

    load = lambda: MistralBiModel.from_pretrained(str(d), torch_dtype=torch.float32, attn_implementation="eager")  # noqa: E731
    runs = [{"adapters": [], "cases": embed(load())}]
    mntp = random_lora(load(), 11, 4, 8, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                       OUT / "llm2vec-mntp")
    supervised = random_lora(mntp.merge_and_unload(), 12, 2, 6, ["q_proj", "v_proj"], OUT / "llm2vec-supervised")
    runs.append({"adapters": ["llm2vec-mntp", "llm2vec-supervised"], "cases": embed(supervised)})
    return {"package": "llm2vec", "max_length": max_length, "runs": runs}


def main():
    if len(sys.argv) == 2:  # inside a venv: one package
        import importlib.metadata as md

        import torch
        torch.set_num_threads(1)  # the same reduction order on every run
        result = {"gritlm": run_gritlm, "llm2vec": run_llm2vec}[sys.argv[1]]()
        result["versions"] = {p: md.version(p) for p in ("torch", "transformers", "tokenizers", sys.argv[1])}
        (OUT / f"{sys.argv[1]}.json").write_text(json.dumps(result) + "\n")
        return
    for name in PACKAGES:
        if not (MODELS / name / "expected.json").exists():
            sys.exit(f"{MODELS / name} is missing: run scripts/make_embedder_fixtures.py first")
    OUT.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([venv_python(name), __file__, name], check=True, env=env)
        print(f"{OUT / name}.json written by {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
