"""Evaluation tasks read from directories.

Retrieval (BEIR layout, scripts/data/build_manpages_eval.py): queries.jsonl {_id, text}, corpus.jsonl
{_id, title, text}, qrels.tsv (query-id<TAB>corpus-id<TAB>score, header line). STS (scripts/data/build_lee_sts.py):
pairs.tsv (sentence1<TAB>sentence2<TAB>score, header line). Either may have a meta.json whose "name" names
the task and whose "instruction" is the instruction to use; without one the harness's DEFAULT_INSTRUCTIONS
are looked up by the name, the directory name, then the part of either before the first "-"
("manpages-limit200" -> "manpages").

As `ullme eval` (Sources/ULLMESwift/Eval/EvalData.swift): queries without a relevant document (grade >= 1)
are dropped; the others keep their file order.
"""
import csv
import json
import os
from dataclasses import dataclass, field

import numpy as np

# The instructions of `ullme eval` (Sources/ullme-cli/EvalCommand.swift) for the sets it was written for.
DEFAULT_INSTRUCTIONS = {
    "manpages": "Given a one-line summary of a Linux manual page, retrieve the page's description",
    "lee": "Retrieve semantically similar text.",
}
# STS without a task-specific instruction: `ullme eval --task sts`'s default (a generic one).
DEFAULT_STS_INSTRUCTION = DEFAULT_INSTRUCTIONS["lee"]


@dataclass
class RetrievalTask:
    name: str
    path: str
    instruction: str
    query_ids: list
    queries: list            # query texts, aligned with query_ids
    doc_ids: list
    docs: list               # {"title", "text"}, aligned with doc_ids
    qrels: dict              # query id -> {doc id: grade}
    kind: str = field(default="retrieval", init=False)

    @property
    def n_units(self):
        return len(self.query_ids)

    def describe(self):
        return {"kind": self.kind, "path": self.path, "instruction": self.instruction,
                "queries": len(self.query_ids), "documents": len(self.doc_ids)}


@dataclass
class STSTask:
    name: str
    path: str
    instruction: str
    pairs: list              # (sentence1, sentence2)
    gold: np.ndarray         # (n_pairs,) float64
    kind: str = field(default="sts", init=False)

    @property
    def n_units(self):
        return len(self.pairs)

    def texts(self):
        """The distinct texts of the pairs in first-seen order, and each pair's two indices into them."""
        index, texts = {}, []
        for a, b in self.pairs:
            for s in (a, b):
                if s not in index:
                    index[s] = len(texts)
                    texts.append(s)
        return texts, np.array([[index[a], index[b]] for a, b in self.pairs], dtype=np.int64)

    def describe(self):
        return {"kind": self.kind, "path": self.path, "instruction": self.instruction, "pairs": len(self.pairs)}


def document_text(doc):
    """The text a document is embedded / indexed as: "title text" (BEIR's convention), or the text alone."""
    return f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]


def _jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _tsv(path, header):
    """Rows of a TSV file, without its header line (which must be `header`'s first column)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0][0] != header:
        raise ValueError(f"{path}: expected a header line starting with {header!r}")
    return [r for r in rows[1:] if r]


def _instruction(meta, path, kind):
    if "instruction" in meta:
        return meta["instruction"]
    names = [meta.get("name"), os.path.basename(os.path.normpath(path))]
    for n in [n for n in names if n] + [n.split("-")[0] for n in names if n]:
        if n in DEFAULT_INSTRUCTIONS:
            return DEFAULT_INSTRUCTIONS[n]
    if kind == "sts":
        return DEFAULT_STS_INSTRUCTION
    raise ValueError(f"{path}: no \"instruction\" in meta.json and no default for task {names} "
                     f"(add one to meta.json or to DEFAULT_INSTRUCTIONS in {__file__})")


def load_task(path, limit_queries=None, limit_docs=None):
    """Reads a task directory. limit_queries: keep the first N judged queries (retrieval) or pairs (STS).
    limit_docs (retrieval): keep the first N documents of corpus.jsonl, the judgements of those, and the
    queries that still have a relevant document (then limit_queries applies)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such task directory (see data/README.md for the builders)")
    meta_path = os.path.join(path, "meta.json")
    meta = json.load(open(meta_path, encoding="utf-8")) if os.path.exists(meta_path) else {}
    name = meta.get("name") or os.path.basename(os.path.normpath(path))
    if os.path.exists(os.path.join(path, "pairs.tsv")):
        rows = _tsv(os.path.join(path, "pairs.tsv"), "sentence1")
        if any(len(r) != 3 for r in rows):
            raise ValueError(f"{path}/pairs.tsv: every line needs sentence1<TAB>sentence2<TAB>score")
        rows = rows[:limit_queries] if limit_queries else rows
        return STSTask(name, path, _instruction(meta, path, "sts"), [(a, b) for a, b, _ in rows],
                       np.array([float(s) for _, _, s in rows]))
    missing = [f for f in ("queries.jsonl", "corpus.jsonl", "qrels.tsv") if not os.path.exists(os.path.join(path, f))]
    if missing:
        raise FileNotFoundError(f"{path}: neither pairs.tsv (STS) nor a BEIR retrieval set (missing {missing})")
    corpus = _jsonl(os.path.join(path, "corpus.jsonl"))
    if limit_docs:
        corpus = corpus[:limit_docs]
    doc_ids = [str(d["_id"]) for d in corpus]
    kept = set(doc_ids)
    qrels = {}
    for q, d, s in _tsv(os.path.join(path, "qrels.tsv"), "query-id"):
        if d in kept:
            qrels.setdefault(q, {})[d] = int(float(s))
    queries = [q for q in _jsonl(os.path.join(path, "queries.jsonl"))
               if any(g >= 1 for g in qrels.get(str(q["_id"]), {}).values())]
    queries = queries[:limit_queries] if limit_queries else queries
    if not queries or not corpus:
        raise ValueError(f"{path}: no judged queries or no documents (after the limits)")
    return RetrievalTask(name, path, _instruction(meta, path, "retrieval"),
                         [str(q["_id"]) for q in queries], [q["text"] for q in queries], doc_ids,
                         [{"title": d.get("title") or "", "text": d["text"]} for d in corpus],
                         {str(q["_id"]): qrels[str(q["_id"])] for q in queries})
