#!/usr/bin/env python3
"""Evaluate a set of systems on a set of tasks: retrieval (nDCG@10 / MRR@10 / Recall@10) and STS
(Spearman / Pearson) with bootstrap 95 % CIs, paired comparisons with verdicts, and a "gap closed" figure.

    experiments/eval_suite.py --systems experiments/systems.example.json \\
        --tasks data/eval/manpages data/eval/lee --out build/eval-suite [--limit-queries 50 --limit-docs 200]

Systems (ullme models with adapters and seeds, MiniLM, BM25): see evalkit/systems.py. Tasks: directories
in the BEIR layout (retrieval) or with pairs.tsv (STS), see evalkit/tasks.py. Writes OUT/results.json,
OUT/table.md and OUT/per_query/; embeddings are cached in OUT/cache (--cache-dir) so a re-run only redoes
what changed. experiments/README.md has the details.
"""
import argparse
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from evalkit import bootstrap, report, runner  # noqa: E402
from evalkit.cache import EmbeddingCache  # noqa: E402
from evalkit.systems import check_names, load_spec  # noqa: E402
from evalkit.tasks import load_task  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", required=True, help="systems spec (JSON or YAML), see evalkit/systems.py")
    ap.add_argument("--tasks", nargs="+", required=True, help="task directories")
    ap.add_argument("--out", default="build/eval-suite")
    ap.add_argument("--cache-dir", help="embedding cache (default OUT/cache)")
    ap.add_argument("--limit-queries", type=int, help="first N judged queries (retrieval) or pairs (STS)")
    ap.add_argument("--limit-docs", type=int, help="retrieval: first N documents (and the queries judged on them)")
    ap.add_argument("--resamples", type=int, default=bootstrap.RESAMPLES, help="bootstrap resamples (1000)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ap.add_argument("--threads", type=int, default=0, help="threads of ullme / torch (0 = their default)")
    ap.add_argument("--compare", action="append", default=[], metavar="A:B", help="add a paired comparison")
    ap.add_argument("--gap", metavar="MODEL[,MODEL...][:BASE:REFERENCE]",
                    help="the gap-closed models (replaces the spec's gap; base/reference default base, MiniLM)")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    systems, pairs, gap = load_spec(a.systems)
    pairs += [tuple(c.split(":")) for c in a.compare]
    if a.gap:
        parts = a.gap.split(":") + ["base", "MiniLM"][len(a.gap.split(":")) - 1:]
        gap = {"models": parts[0].split(","), "base": parts[1], "reference": parts[2]}
    check_names([s.name for s in systems], pairs, gap)
    tasks = [load_task(p, a.limit_queries, a.limit_docs) for p in a.tasks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        sys.exit(f"eval_suite: two tasks are named alike: {names} (set \"name\" in their meta.json)")
    cache = EmbeddingCache(a.cache_dir or os.path.join(a.out, "cache"))
    t0 = time.time()
    results, values, replicates = runner.evaluate(systems, tasks, cache, a.resamples, a.seed, a.threads)
    means = runner.retrieval_mean(systems, tasks, results, replicates)
    comparisons = runner.compare(pairs, tasks, results, replicates, means)
    args = sys.argv[1:] if argv is None else argv
    settings = {"command": " ".join(shlex.quote(x) for x in ["experiments/eval_suite.py", *args]),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "resamples": a.resamples, "seed": a.seed,
                "ci_level": bootstrap.LEVEL, "limit_queries": a.limit_queries, "limit_docs": a.limit_docs,
                "cache": {"hits": cache.hits, "misses": cache.misses}, "seconds": round(time.time() - t0, 1)}
    _, table = report.write(a.out, settings, tasks, systems, results, values, means, comparisons,
                            runner.gap_closed(gap, tasks, results))
    print(table)
    print(f"eval_suite: wrote {a.out}/results.json, {a.out}/table.md (cache: {cache.hits} hits, "
          f"{cache.misses} misses)", file=sys.stderr)


if __name__ == "__main__":
    main()
