"""evalkit: the pieces of experiments/eval_suite.py, one concern per module.

    tasks      retrieval (BEIR layout) and STS task directories, instructions, --limit-* subsets
    systems    the systems spec file (ullme / minilm / bm25 rows, seeds, comparisons, gap)
    encoders   ullme (the Python binding) and MiniLM (transformers, mean pooling) embedders
    bm25       the lexical BM25 baseline (k1 0.9, b 0.4)
    cache      embeddings cached as .npy per (system, seed, task, role)
    metrics    exact cosine ranking (trec_eval tie order), nDCG@10 / MRR@10 / Recall@10, Spearman / Pearson
    bootstrap  percentile CIs over queries (and seeds), paired differences, verdicts
    runner     systems x tasks -> per-seed per-query values, point estimates and bootstrap replicates
    report     results JSON, per-query arrays, Markdown tables, "gap closed"
"""
