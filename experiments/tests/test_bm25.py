"""BM25 against the formula worked by hand (k1 0.9, b 0.4, Lucene idf, query term counts)."""
import math

import numpy as np

from evalkit.bm25 import bm25_scores, tokenize


def test_bm25_by_hand():
    docs = [{"title": "A", "text": "b"}, {"title": "", "text": "a C, c!"}]  # "a b" (title + text), "a c c"
    scores = bm25_scores(["c", "a a", "zzz"], docs)
    avgdl = 2.5

    def term(tf, dl, df, n=2, k1=0.9, b=0.4):
        return math.log(1 + (n - df + 0.5) / (df + 0.5)) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
    expected = np.array([[0.0, term(2, 3, 1)],
                         [2 * term(1, 2, 2), 2 * term(1, 3, 2)],
                         [0.0, 0.0]])
    assert np.allclose(scores, expected, rtol=1e-12, atol=0)


def test_tokenize():
    assert tokenize("Open() and possibly CREATE a_file, 2x") == ["open", "and", "possibly", "create", "a_file", "2x"]
