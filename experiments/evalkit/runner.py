"""Systems x tasks: per-seed per-unit values, point estimates with bootstrap CIs, paired comparisons."""
import sys
import time

import numpy as np

from . import bootstrap
from .bm25 import bm25_scores
from .metrics import RETRIEVAL_METRICS, STS_METRICS, cosine_scores, retrieval_metrics, sts_correlations
from .saved import SavedRun

PRIMARY = {"retrieval": "ndcg@10", "sts": "spearman"}
METRICS = {"retrieval": RETRIEVAL_METRICS, "sts": STS_METRICS}


def _embed(cache, system, seed, task, role, encoder, instruction, items, encode):
    return cache.get(task.name, role, encoder.fingerprint(), instruction, items, lambda: encode(items, instruction),
                     about={"system": system.name, "seed": system.seed_labels[seed]})


def unit_values(system, encoder, seed, task, cache):
    """Retrieval: {metric: (n_queries,)}; STS: {"cosine": (n_pairs,)} for one seed of a system."""
    if isinstance(encoder, SavedRun):
        return encoder.unit_values(task)
    q_instr = task.instruction if system.query_instruction else ""
    if task.kind == "retrieval":
        if encoder is None:  # BM25
            scores = bm25_scores(task.queries, task.docs)
        else:
            d_instr = task.instruction if system.doc_instruction else ""
            q = _embed(cache, system, seed, task, "queries", encoder, q_instr, task.queries, encoder.encode_queries)
            d = _embed(cache, system, seed, task, "corpus", encoder, d_instr, task.docs, encoder.encode_corpus)
            scores = cosine_scores(q, d)
        return retrieval_metrics(scores, task)
    texts, idx = task.texts()
    e = _embed(cache, system, seed, task, "sts", encoder, q_instr, texts, encoder.encode_queries)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return {"cosine": np.einsum("ij,ij->i", e[idx[:, 0]], e[idx[:, 1]]).astype(np.float64)}


def per_seed_statistics(task, values, units):
    """{metric: (n_seeds, n_draws)}: each seed's statistic on each row of units (n_draws, n_units)."""
    if task.kind == "retrieval":
        return {m: values[m][:, units].mean(axis=-1) for m in RETRIEVAL_METRICS}
    return sts_correlations(values["cosine"][:, units], task.gold[units])


def estimate(task, values, units, seeds):
    """{metric: {"mean", "ci", "per_seed"}} and {metric: replicates (resamples,)}."""
    n = task.n_units
    point = per_seed_statistics(task, values, np.arange(n)[None, :])
    reps = {m: bootstrap.combine(v, seeds) for m, v in per_seed_statistics(task, values, units).items()}
    summary = {m: {"mean": float(point[m].mean()), "ci": bootstrap.ci(reps[m]),
                   "per_seed": [float(x) for x in point[m][:, 0]]} for m in METRICS[task.kind]}
    return summary, reps


def evaluate(systems, tasks, cache, resamples=bootstrap.RESAMPLES, seed=0, threads=0, log=sys.stderr):
    """Runs every system on every task it supports. Returns (results, values, replicates):
    results[task][system] = {"seeds": labels, "metrics": {metric: {mean, ci, per_seed}}};
    values[(task, system)] = {name: (n_seeds, n_units)}; replicates[(task, system)] = {metric: (resamples,)}."""
    results, values, replicates = {t.name: {} for t in tasks}, {}, {}
    for system in systems:
        encoders = system.encoders(threads)
        draws = bootstrap.seed_draws(len(encoders), resamples, seed, system.name)
        for task in tasks:
            if not system.supports(task):
                continue
            t0 = time.time()
            per_seed = [unit_values(system, enc, i, task, cache) for i, enc in enumerate(encoders)]
            v = {k: np.stack([p[k] for p in per_seed]) for k in per_seed[0]}
            units = bootstrap.unit_draws(task.n_units, resamples, seed, task.name)
            summary, reps = estimate(task, v, units, draws)
            results[task.name][system.name] = {"seeds": system.seed_labels, "metrics": summary}
            values[(task.name, system.name)], replicates[(task.name, system.name)] = v, reps
            m = PRIMARY[task.kind]
            print(f"eval_suite: {system.name:>12} on {task.name}: {m} {summary[m]['mean']:.4f} "
                  f"[{summary[m]['ci'][0]:.4f}, {summary[m]['ci'][1]:.4f}] ({time.time() - t0:.1f} s)", file=log)
        for enc in encoders:
            if enc is not None:
                enc.close()
    return results, values, replicates


def retrieval_mean(systems, tasks, results, replicates):
    """Per system evaluated on every retrieval task: mean nDCG@10 over the tasks and its CI (the task
    means' replicates averaged; tasks are resampled independently)."""
    names = [t.name for t in tasks if t.kind == "retrieval"]
    out = {}
    for s in systems:
        if names and all(s.name in results[t] for t in names):
            mean = float(np.mean([results[t][s.name]["metrics"]["ndcg@10"]["mean"] for t in names]))
            reps = np.mean([replicates[(t, s.name)]["ndcg@10"] for t in names], axis=0)
            out[s.name] = {"mean": mean, "ci": bootstrap.ci(reps), "replicates": reps}
    return out


def compare(pairs, tasks, results, replicates, means):
    """Paired comparisons: for each (A, B), each task both ran (every metric) and the retrieval mean."""
    out = []
    for a, b in pairs:
        row = {"a": a, "b": b, "tasks": {}}
        for t in tasks:
            if a in results[t.name] and b in results[t.name]:
                row["tasks"][t.name] = {
                    m: bootstrap.paired(results[t.name][a]["metrics"][m]["mean"], replicates[(t.name, a)][m],
                                        results[t.name][b]["metrics"][m]["mean"], replicates[(t.name, b)][m], (a, b))
                    for m in METRICS[t.kind]}
        if a in means and b in means:
            row["retrieval_mean"] = bootstrap.paired(means[a]["mean"], means[a]["replicates"],
                                                     means[b]["mean"], means[b]["replicates"], (a, b))
        out.append(row)
    return out


def gap_closed(gap, tasks, results):
    """(model - base) / (reference - base) of nDCG@10 per retrieval task, and the mean over the tasks."""
    if not gap:
        return None
    out = {"base": gap["base"], "reference": gap["reference"], "models": {}}
    names = [t.name for t in tasks if t.kind == "retrieval"]
    for model in gap["models"]:
        per_task = {}
        for t in names:
            r = results[t]
            if all(n in r for n in (model, gap["base"], gap["reference"])):
                get = lambda n: r[n]["metrics"]["ndcg@10"]["mean"]  # noqa: E731
                den = get(gap["reference"]) - get(gap["base"])
                per_task[t] = (get(model) - get(gap["base"])) / den if abs(den) > 1e-12 else None
        finite = [v for v in per_task.values() if v is not None]
        out["models"][model] = {"tasks": per_task, "mean": float(np.mean(finite)) if finite else None}
    return out
