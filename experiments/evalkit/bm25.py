"""A small BM25 lexical baseline with BEIR's / Anserini's parameters (k1 = 0.9, b = 0.4).

score(q, d) = sum over query terms t of qtf(t) * idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl)),
idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)) (Lucene's BM25Similarity, which Anserini uses; Lucene >= 8
drops the constant (k1 + 1) factor, which changes no ranking; query terms are weighted by their count, as
Anserini's bag-of-words queries). Differences from Lucene: exact document lengths (Lucene stores them
lossily in one byte) and a plain tokeniser (lowercase, `\\w+` runs; no stemming, no stop words).
Documents are "title text".
"""
import re

import numpy as np
from scipy.sparse import csr_matrix

from .tasks import document_text

K1, B = 0.9, 0.4
_WORD = re.compile(r"\w+")


def tokenize(text):
    return _WORD.findall(text.lower())


def _counts(token_lists, vocab, grow):
    """Sparse term-count matrix (len(token_lists), len(vocab)); grow=False drops unknown terms."""
    rows, cols = [], []
    for i, toks in enumerate(token_lists):
        for t in toks:
            j = vocab.setdefault(t, len(vocab)) if grow else vocab.get(t)
            if j is not None:
                rows.append(i)
                cols.append(j)
    data = np.ones(len(rows), dtype=np.float64)
    m = csr_matrix((data, (rows, cols)), shape=(len(token_lists), max(len(vocab), 1)))
    m.sum_duplicates()
    return m


def bm25_scores(queries, docs, k1=K1, b=B):
    """(n_queries, n_docs) BM25 scores; queries are strings, docs {"title", "text"} dicts."""
    vocab = {}
    tf = _counts([tokenize(document_text(d)) for d in docs], vocab, True)
    qtf = _counts([tokenize(q) for q in queries], vocab, False)
    n = tf.shape[0]
    dl = np.asarray(tf.sum(axis=1)).ravel()
    avgdl = max(dl.mean(), 1e-12)
    df = np.bincount(tf.indices, minlength=tf.shape[1])
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    w = tf.tocoo()
    weights = idf[w.col] * w.data / (w.data + k1 * (1 - b + b * dl[w.row] / avgdl))
    doc_weights = csr_matrix((weights, (w.row, w.col)), shape=tf.shape)
    return np.asarray((qtf @ doc_weights.T).todense())
