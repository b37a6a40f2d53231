"""Per-query retrieval metrics against pytrec_eval (trec_eval), the tie order, and the STS correlations
against scipy."""
import numpy as np
import pytrec_eval
from scipy.stats import pearsonr, spearmanr

from evalkit.metrics import retrieval_metrics, sts_correlations, top_k
from evalkit.tasks import RetrievalTask


def random_task(rng, n_queries=40, n_docs=60):
    doc_ids = [f"d{rng.integers(10**6)}-{i}" for i in range(n_docs)]  # ids in no particular order
    qrels = {}
    for q in range(n_queries):
        judged = rng.choice(n_docs, size=rng.integers(1, 15), replace=False)
        grades = rng.integers(0, 4, size=len(judged))
        grades[0] = max(grades[0], 1)  # every query has a relevant document, as the loader guarantees
        qrels[f"q{q}"] = {doc_ids[j]: int(g) for j, g in zip(judged, grades)}
    return RetrievalTask("random", "-", "", list(qrels), [""] * n_queries, doc_ids, [{}] * n_docs, qrels)


def test_per_query_metrics_match_pytrec_eval():
    rng = np.random.default_rng(7)
    for levels in (3, 20, None):  # few score levels = many ties at the cut-off; None = continuous scores
        task = random_task(rng)
        scores = rng.random((len(task.query_ids), len(task.doc_ids))).astype(np.float32)
        if levels:
            scores = np.round(scores * levels) / levels
        ours = retrieval_metrics(scores, task)
        run = {q: {d: float(scores[i, j]) for j, d in enumerate(task.doc_ids)} for i, q in enumerate(task.query_ids)}
        ref = pytrec_eval.RelevanceEvaluator(task.qrels, {"ndcg_cut.10", "recall.10", "recip_rank"}).evaluate(run)
        for i, q in enumerate(task.query_ids):
            rr = ref[q]["recip_rank"]
            assert abs(ours["ndcg@10"][i] - ref[q]["ndcg_cut_10"]) < 1e-12, (levels, q)
            assert abs(ours["recall@10"][i] - ref[q]["recall_10"]) < 1e-12, (levels, q)
            assert abs(ours["mrr@10"][i] - (rr if rr >= 0.1 - 1e-12 else 0.0)) < 1e-12, (levels, q)


def test_ties_are_ranked_by_document_id_descending():
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    ids = ["b", "z", "c", "a", "y"]
    assert [ids[j] for j in top_k(scores, ids, 5)[0]] == ["z", "c", "b", "a", "y"]


def test_sts_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    cos = np.round(rng.random(200), 1)  # ties in both
    gold = np.round(cos + rng.normal(0, 0.3, 200), 1)
    got = sts_correlations(cos, gold)
    assert abs(got["spearman"] - spearmanr(cos, gold).statistic) < 1e-12
    assert abs(got["pearson"] - pearsonr(cos, gold).statistic) < 1e-12
    # rows of a resample matrix are independent correlations
    idx = rng.integers(0, 200, size=(5, 200))
    rows = sts_correlations(cos[idx], gold[idx])["spearman"]
    assert np.allclose(rows, [spearmanr(cos[i], gold[i]).statistic for i in idx], atol=1e-12)
