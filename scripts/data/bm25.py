"""BM25 (k1 0.9, b 0.4, as Anserini and BEIR's baselines) over a list of texts, with scipy sparse
matrices so that mining a few ten thousand queries takes seconds. Tokens: lowercase runs of letters and
digits."""
import re

import numpy as np
from scipy import sparse

TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text):
    return TOKEN.findall(text.lower())


class BM25:
    def __init__(self, docs, k1=0.9, b=0.4):
        self.vocab = {}
        rows, cols = [], []
        for i, d in enumerate(docs):
            for t in tokens(d):
                rows.append(i)
                cols.append(self.vocab.setdefault(t, len(self.vocab)))
        tf = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                               shape=(len(docs), len(self.vocab)))
        tf.sum_duplicates()
        n = len(docs)
        dl = np.asarray(tf.sum(axis=1)).ravel()
        df = np.bincount(tf.indices, minlength=len(self.vocab))
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * dl / max(dl.mean(), 1e-9))
        tf = tf.tocoo()
        w = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * idf[tf.col]
        self.weights = sparse.csr_matrix((w, (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # terms x docs

    def query_matrix(self, queries):
        rows, cols = [], []
        for i, q in enumerate(queries):
            for t in set(tokens(q)):
                if t in self.vocab:
                    rows.append(i)
                    cols.append(self.vocab[t])
        return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                 shape=(len(queries), len(self.vocab)))

    def top(self, queries, k, chunk=2048):
        """For each query, the indices of its k best documents, best first (ties: lower index first)."""
        out = []
        for s in range(0, len(queries), chunk):
            scores = (self.query_matrix(queries[s:s + chunk]) @ self.weights).toarray()
            kk = min(k, scores.shape[1])
            part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            for r, idx in enumerate(part):
                order = sorted(idx.tolist(), key=lambda j: (-scores[r, j], j))
                out.append(order)
        return out
