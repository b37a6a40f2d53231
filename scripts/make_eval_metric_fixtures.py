#!/usr/bin/env python3
"""Make Tests/fixtures/eval/: a TREC run file and qrels with ties, graded relevance and queries whose
relevant documents are not retrieved, plus the metrics pytrec_eval (trec_eval's own code) gives them,
and STS score vectors with ties plus scipy's Spearman/Pearson. Tests/ULLMETests/EvalMetricsTests.swift
compares the Swift metrics with these within 1e-6.

    pip install pytrec-eval-terrier scipy   # (ranx, if installed, is cross-checked too)
    python3 scripts/make_eval_metric_fixtures.py

Definitions (as BEIR's EvaluateRetrieval): ndcg@10 = ndcg_cut_10, recall@k = recall_k, map = map,
mrr@10 = recip_rank of the run cut to its top 10 in trec_eval's order (score desc, doc id desc).
Deterministic: random.Random(20240807).
"""
import json
import os
import random
import sys

try:
    import pytrec_eval
    from scipy import stats
except ImportError as e:
    sys.exit(f"make_eval_metric_fixtures: {e}; pip install pytrec-eval-terrier scipy")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "fixtures", "eval")


def trec_order(docs):
    # score descending, then doc id descending (trec_eval's tie rule)
    return sorted(docs.items(), key=lambda kv: (-kv[1], tuple(-b for b in kv[0].encode())))


def main():
    rng = random.Random(20240807)
    docs = [f"d{i:03d}" for i in range(150)] + ["D7", "a", "z9", "d07"]
    qrels, run = {}, {}
    for qi in range(30):
        q = f"q{qi:02d}"
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[q] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if qi == 3:  # judged, but no document relevant
            qrels[q] = {d: 0 for d in judged}
        n = rng.choice([5, 12, 60, 120, 154])
        retrieved = rng.sample(docs, n)
        if qi in (5, 6):  # relevant documents exist but none is retrieved
            relevant = {d for d, g in qrels[q].items() if g >= 1}
            retrieved = [d for d in docs if d not in relevant][:40]
        # coarse scores make many ties; a few queries get all-equal scores
        if qi % 7 == 0:
            scores = {d: 0.5 for d in retrieved}
        else:
            scores = {}
            for d in retrieved:  # relevant documents usually score higher, so the metrics are not all ~0
                boost = 0.4 * qrels[q].get(d, 0) if rng.random() < 0.7 else 0.0
                scores[d] = round(rng.choice([rng.random(), round(rng.random(), 1)]) + boost, 6)
        run[q] = scores
    run["q_unjudged"] = {"d001": 1.0, "d002": 0.5}  # in the run, not in the qrels: skipped

    measures = {"ndcg_cut.10", "recall.1,10,100", "map", "recip_rank"}
    ev = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    cut = {q: dict(trec_order(d)[:10]) for q, d in run.items()}
    ev_cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    per_query = {}
    for q in sorted(ev):
        m = ev[q]
        per_query[q] = {"ndcg@10": m["ndcg_cut_10"], "mrr@10": ev_cut[q]["recip_rank"], "recall@1": m["recall_1"],
                        "recall@10": m["recall_10"], "recall@100": m["recall_100"], "map": m["map"]}
    names = ["ndcg@10", "mrr@10", "recall@1", "recall@10", "recall@100", "map"]
    mean = {k: sum(per_query[q][k] for q in per_query) / len(per_query) for k in names}

    try:  # optional cross-check with ranx (differences can only come from tie handling)
        from ranx import Qrels as RQ, Run as RR, evaluate
        r = evaluate(RQ({q: {d: g for d, g in j.items() if g > 0} or {"__none__": 0} for q, j in qrels.items()}),
                     RR({q: d for q, d in run.items() if q in qrels}), ["ndcg@10", "mrr@10", "recall@10", "map"])
        print("ranx (its own tie order):", {k: round(v, 6) for k, v in r.items()}, file=sys.stderr)
    except Exception as e:  # noqa: BLE001
        print(f"ranx cross-check skipped: {e}", file=sys.stderr)

    # STS: gold with ties, predictions with ties
    n = 200
    gold = [rng.choice([0.0, 0.2, 0.25, 0.5, 0.75, 1.0]) for _ in range(n)]
    pred = [round(g * 0.6 + rng.random() * 0.5, 2) for g in gold]
    sts = {"gold": gold, "pred": pred, "spearman": float(stats.spearmanr(pred, gold).statistic),
           "pearson": float(stats.pearsonr(pred, gold).statistic)}

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "run.trec"), "w", newline="\n") as f:
        for q in sorted(run):
            # written in a shuffled order with bogus ranks: trec_eval ranks by score alone
            items = list(run[q].items())
            rng.shuffle(items)
            for rank, (d, s) in enumerate(items, 1):
                f.write(f"{q} Q0 {d} {rank} {s!r} fixture\n")
    with open(os.path.join(OUT, "qrels.tsv"), "w", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in sorted(qrels):
            for d in sorted(qrels[q]):
                f.write(f"{q}\t{d}\t{qrels[q][d]}\n")
    with open(os.path.join(OUT, "expected.json"), "w", newline="\n") as f:
        json.dump({"reference": f"pytrec_eval {getattr(pytrec_eval, '__version__', '')} / scipy {__import__('scipy').__version__}",
                   "mean": mean, "per_query": per_query, "sts": sts}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps({"queries": len(per_query), "mean": mean, "spearman": sts["spearman"], "pearson": sts["pearson"]}))


if __name__ == "__main__":
    main()
