"""Per-query retrieval metrics and STS correlations, with the definitions `ullme eval` uses
(Sources/ULLMESwift/Eval/RetrievalMetrics.swift; trec_eval / BEIR):

  ranking    exact search by score (cosine of L2-normalised embeddings, or BM25), equal scores ranked by
             document id descending (trec_eval's order: score, then docno by strcmp, both descending);
  nDCG@10    gain = grade (relevant = grade >= 1), discount log2(rank + 1), ideal ranking from all judged
             grades of the query (trec_eval ndcg_cut_10);
  MRR@10     1 / rank of the first relevant document within the top 10, else 0;
  Recall@10  relevant documents in the top 10 / relevant documents of the query (trec_eval recall_10).
STS: Spearman (Pearson of average ranks) and Pearson of the cosine with the gold scores.
"""
import numpy as np
from scipy.stats import rankdata

K = 10
RETRIEVAL_METRICS = ["ndcg@10", "mrr@10", "recall@10"]
STS_METRICS = ["spearman", "pearson"]


def cosine_scores(queries, docs):
    """(n_queries, n_docs) cosine similarities (rows are L2-normalised here, whatever the encoder did)."""
    def unit(x):
        x = np.asarray(x, dtype=np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return unit(queries) @ unit(docs).T


def top_k(scores, doc_ids, k=K):
    """Indices of the k best documents per query, best first, ties by document id descending."""
    perm = np.array(sorted(range(len(doc_ids)), key=lambda i: doc_ids[i], reverse=True), dtype=np.int64)
    order = np.argsort(-np.asarray(scores)[:, perm], axis=1, kind="stable")[:, :k]  # stable: id order kept
    return perm[order]


def retrieval_metrics(scores, task, k=K):
    """{metric: (n_queries,) float64} for a (n_queries, n_docs) score matrix over task's queries/documents."""
    top = top_k(scores, task.doc_ids, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    out = {m: np.zeros(len(task.query_ids)) for m in RETRIEVAL_METRICS}
    for qi, q in enumerate(task.query_ids):
        judged = task.qrels[q]
        grades = np.array([judged.get(task.doc_ids[j], 0) for j in top[qi]], dtype=np.float64)
        gains = np.where(grades >= 1, grades, 0.0)
        relevant = np.sort([g for g in judged.values() if g >= 1])[::-1].astype(np.float64)
        ideal = relevant[:k]
        hits = np.flatnonzero(gains > 0)
        out["ndcg@10"][qi] = (gains @ discount[:len(gains)]) / (ideal @ discount[:len(ideal)])
        out["mrr@10"][qi] = 1.0 / (hits[0] + 1) if hits.size else 0.0
        out["recall@10"][qi] = hits.size / len(relevant)
    return out


def _rowwise_pearson(x, y):
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    return np.where(den > 0, (x * y).sum(axis=-1) / np.where(den > 0, den, 1.0), 0.0)


def sts_correlations(cos, gold):
    """Spearman and Pearson of cos against gold along the last axis (both (..., n_pairs)): a resample matrix
    (B, n) gives B values; average ranks for ties, as scipy.stats.spearmanr."""
    cos, gold = np.asarray(cos, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    return {"spearman": _rowwise_pearson(rankdata(cos, axis=-1), rankdata(gold, axis=-1)),
            "pearson": _rowwise_pearson(cos, gold)}
