"""MTEB 2.x adapter for libullme models.

    import mteb, ullme
    model = ullme.Model(attention="bidirectional")      # ullme.Model is itself an mteb encoder:
    results = mteb.evaluate(model, mteb.get_tasks(["NFCorpus"]), cache=None)
    # equivalently, with explicit settings: ullme.mteb_adapter.UllmeMTEBEncoder(model, instructions=...)

`UllmeMTEBEncoder(model)` implements mteb's EncoderProtocol (mteb/models/models_protocols.py):
``encode(inputs: DataLoader[BatchedInput], *, task_metadata, hf_split, hf_subset, prompt_type=None,
**kwargs) -> np.ndarray``, ``similarity``, ``similarity_pairwise`` and the ``mteb_model_meta`` property,
and keeps the older ``encode_queries`` / ``encode_corpus`` conveniences.

How texts are formatted (the ULLME reference's convention, the same as `ullme eval`):
  - prompt_type == "query" (or None, e.g. STS / classification): ``{instruction}\\n{text}`` with the task's
    instruction (see `instruction_for`); an empty instruction embeds the text alone;
  - prompt_type == "document": the batch's "text" (mteb joins title + " " + text) in the candidate
    format, with `corpus_instruction` (default none, i.e. the document alone).

`model` is an `ullme.Model` (its encode / encode_queries / encode_corpus). mteb is only imported when
`mteb_model_meta` is read.
"""
from __future__ import annotations

import os

import numpy as np

# Default instructions by mteb task type (queries / symmetric texts). Override per task name with
# `instructions={"TaskName": "..."}` or give a callable(task_metadata, prompt_type) -> str.
DEFAULT_INSTRUCTIONS = {
    "Retrieval": "Given a query, retrieve documents that answer it",
    "Reranking": "Given a query, retrieve documents that answer it",
    "InstructionRetrieval": "Given a query, retrieve documents that answer it",
    "STS": "Retrieve semantically similar text.",
    "PairClassification": "Retrieve semantically similar text.",
    "Summarization": "Given a news summary, retrieve other semantically similar summaries",
    "BitextMining": "Retrieve parallel sentences.",
    "Classification": "Classify the given text.",
    "MultilabelClassification": "Classify the given text.",
    "Clustering": "Identify the topic or theme of the given text.",
}


def _prompt_name(prompt_type):
    if prompt_type is None:
        return None
    return getattr(prompt_type, "value", prompt_type)


class UllmeMTEBEncoder:
    """Wraps a libullme model as an mteb 2.x encoder (see the module docstring)."""

    def __init__(self, model, instructions=None, corpus_instruction="", batch_size=None, name=None,
                 revision=None, show_progress_bar=None):
        self.model = model
        self.instructions = instructions if instructions is not None else {}
        self.corpus_instruction = corpus_instruction
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        path = getattr(model, "path", None)
        base = os.path.splitext(os.path.basename(path))[0] if path else type(model).__name__
        self.name = name or f"libullme/{base}"
        self.revision = revision or "local"

    # ---- instructions ------------------------------------------------------------------------
    def instruction_for(self, task_metadata, prompt_type):
        """The instruction of the query side of a task: `instructions[task name]`, else the callable,
        else DEFAULT_INSTRUCTIONS[task type], else ""."""
        if callable(self.instructions):
            return self.instructions(task_metadata, prompt_type) or ""
        name = getattr(task_metadata, "name", None)
        if name in self.instructions:
            return self.instructions[name]
        return DEFAULT_INSTRUCTIONS.get(getattr(task_metadata, "type", None), "")

    # ---- mteb EncoderProtocol ----------------------------------------------------------------
    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
        """Embed every batch of `inputs` (an iterable of dicts with a "text" list, as mteb's DataLoader
        yields) into one float32 array (n, dim), L2-normalised."""
        texts = []
        for batch in inputs:
            t = batch["text"]
            texts.extend([t] if isinstance(t, str) else list(t))
        is_doc = _prompt_name(prompt_type) == "document"
        instruction = self.corpus_instruction if is_doc else self.instruction_for(task_metadata, prompt_type)
        bs = kwargs.get("batch_size") or self.batch_size
        show = kwargs.get("show_progress_bar", self.show_progress_bar)
        emb = self.model.encode(texts, is_query=not is_doc, instruction=instruction, batch_size=bs,
                                normalize=True, show_progress_bar=show)
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)

    def similarity(self, embeddings1, embeddings2):
        return self.model.similarity(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2):
        return self.model.similarity_pairwise(embeddings1, embeddings2)

    @property
    def mteb_model_meta(self):
        from mteb.models.model_meta import ModelMeta

        info = getattr(self.model, "info", None)
        info = info if isinstance(info, dict) else {}
        params = info.get("params", {})
        return ModelMeta.create_empty({
            "name": self.name,
            "revision": self.revision,
            "n_parameters": info.get("n_parameters"),
            "embed_dim": info.get("hidden_size", getattr(self.model, "dim", None)),
            "max_tokens": params.get("max_length"),
            "similarity_fn_name": getattr(self.model, "similarity_fn_name", "cosine"),
            "use_instructions": True,
            "open_weights": True,
            "reference": "https://arxiv.org/abs/2408.03402",
        })

    # ---- conveniences (the MTEB 1.x names) -----------------------------------------------------
    def encode_queries(self, queries, instruction=None, **kw):
        instr = DEFAULT_INSTRUCTIONS["Retrieval"] if instruction is None else instruction
        return self.model.encode_queries(queries, instruction=instr, **kw)

    def encode_corpus(self, corpus, instruction=None, **kw):
        instr = self.corpus_instruction if instruction is None else instruction
        return self.model.encode_corpus(corpus, instruction=instr, **kw)
