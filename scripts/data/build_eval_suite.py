#!/usr/bin/env python3
"""Build the evaluation suite's own sets (data/eval/<task>/) from the held-out side of scripts/data/splits.py.

    scripts/data/build_eval_suite.py [--out data/eval] [--only TASK ...]

Retrieval tasks (BEIR layout, as scripts/data/build_manpages_eval.py writes: queries.jsonl, corpus.jsonl,
qrels.tsv, meta.json with the task's instruction from scripts/data/instructions.py):
  debian-packages  synopsis -> long description of the held-out Debian source packages (500 queries,
                   every held-out description in the corpus)
  info-manuals     "{manual}: {node}" -> node text of the held-out GNU info manuals
  debian-faq       question -> answer of the Debian FAQ (never in training; instruction never trained)
STS task (pairs.tsv: sentence1, sentence2, score, as data/eval/lee):
  wordnet-sts      pairs of definitions of held-out WordNet noun synsets (those whose definition the WordNet
                   training split never shows, not even as another sense's negative); score = Wu-Palmer similarity of
                   the two synsets in the noun hierarchy (2·depth(lcs) / (depth(a) + depth(b)), depths of
                   the shortest hypernym paths, as NLTK computes it); pairs drawn as siblings, near
                   relatives and random pairs so that scores spread over [0, 1]
The man-page set and Lee are built by scripts/data/build_manpages_eval.py and scripts/data/build_lee_sts.py.
Deterministic (same bytes on the same package versions).
"""
import argparse
import hashlib
import json
import os
import random
import sys
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from build_mixture import dedupe, doc_text, norm  # noqa: E402
from instructions import INSTRUCTIONS  # noqa: E402
from splits import in_eval  # noqa: E402
from sources import debian_faq, debian_packages, info_manuals  # noqa: E402

RETRIEVAL = {"debian-packages": (debian_packages.records, 500), "info-manuals": (info_manuals.records, 0),
             "debian-faq": (debian_faq.records, 0)}
N_STS_PAIRS = 1000


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_meta(out, meta):
    with open(os.path.join(out, "meta.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def build_retrieval(name, out):
    make, n_queries = RETRIEVAL[name]
    every = list(make())
    # Text shared across the split (the readline manual is also a chapter of bash's) stays on the training side.
    trained = {norm(doc_text(r)) for r in every if not in_eval(r["source"], r["key"])}
    recs = dedupe([r for r in every if in_eval(r["source"], r["key"]) and norm(doc_text(r)) not in trained])
    if not recs:
        sys.exit(f"build_eval_suite: {name}: no held-out records")
    queries = recs
    if n_queries and len(recs) > n_queries:
        queries = sorted(sorted(recs, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:n_queries],
                         key=lambda r: r["id"])
    os.makedirs(out, exist_ok=True)
    write_jsonl(os.path.join(out, "corpus.jsonl"), ({"_id": r["id"], "title": r["title"], "text": r["text"]} for r in recs))
    write_jsonl(os.path.join(out, "queries.jsonl"), ({"_id": "q:" + r["id"], "text": r["query"]} for r in queries))
    with open(os.path.join(out, "qrels.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for r in queries:
            f.write(f"q:{r['id']}\t{r['id']}\t1\n")
    keys = sorted({r["key"] for r in recs})
    meta = {"name": name, "task": "retrieval", "instruction": INSTRUCTIONS[name],
            "counts": {"corpus": len(recs), "dropped_duplicates_or_shared": sum(in_eval(r["source"], r["key"]) for r in every) - len(recs), "queries": len(queries), "qrels": len(queries), "held_out_keys": len(keys)},
            "held_out_keys": keys if len(keys) <= 50 else keys[:50] + ["..."],
            "split": "scripts/data/splits.py", "builder": "scripts/data/build_eval_suite.py"}
    write_meta(out, meta)
    print(f"build_eval_suite: {name}: {meta['counts']}", flush=True)


def trained_wordnet_definitions(path="data/grl/wordnet/train.jsonl"):
    """Every definition in WordNet's training split, as positive or negative (other senses of a word)."""
    if not os.path.exists(path):
        sys.exit(f"build_eval_suite: {path} missing: run `make wordnet-data` first")
    with open(path, encoding="utf-8") as f:
        return {t for l in f for e in [json.loads(l)] for t in e["positive"] + e["negative"]}


def build_wordnet_sts(out, wordnet_dir="/usr/share/wordnet"):
    import build_wordnet_grl as wn
    synsets = {s.offset: s for s in wn.parse_data_file(os.path.join(wordnet_dir, "data.noun"), "n", [])}
    trained = trained_wordnet_definitions()
    hyper = {o: [p[1][1] for p in s.pointers if p[0] in ("@", "@i") and p[1][0] == "n"] for o, s in synsets.items()}

    def ancestors(o):  # hypernym -> shortest distance from o
        dist, q = {o: 0}, deque([o])
        while q:
            x = q.popleft()
            for h in hyper.get(x, []):
                if h not in dist:
                    dist[h] = dist[x] + 1
                    q.append(h)
        return dist

    depth_cache = {}

    def depth(o):  # nodes on the shortest path to a root, as NLTK's min_depth() + 1
        if o not in depth_cache:
            depth_cache[o] = 1 + min(d for a, d in ancestors(o).items() if not hyper.get(a))
        return depth_cache[o]

    def wup(a, b):
        da, db = ancestors(a), ancestors(b)
        common = set(da) & set(db)
        if not common:
            return 0.0
        lcs = max(common, key=lambda c: (depth(c), c))
        d = depth(lcs)
        return 2 * d / (d + da[lcs] + d + db[lcs])

    held = sorted(o for o, s in synsets.items()
                  if in_eval("wordnet", f"n:{o}") and s.definition and s.definition not in trained)
    held_set = set(held)
    children = {}
    for o in synsets:
        for h in hyper[o]:
            children.setdefault(h, []).append(o)
    rng = random.Random(20261202)
    pairs, seen = [], set()
    while len(pairs) < N_STS_PAIRS:
        a = rng.choice(held)
        kind = len(pairs) % 3
        if kind == 0:  # a sibling or a child of a sibling
            cand = [c for h in hyper[a] for c in children.get(h, []) if c != a and c in held_set]
        elif kind == 1:  # within four hypernym steps
            cand = [c for h in list(ancestors(a))[:4] for c in children.get(h, []) if c != a and c in held_set]
        else:
            cand = held
        if not cand:
            continue
        b = rng.choice(sorted(cand))
        key = (min(a, b), max(a, b))
        if a == b or key in seen or synsets[a].definition == synsets[b].definition:
            continue
        seen.add(key)
        pairs.append((synsets[a].definition, synsets[b].definition, wup(a, b)))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "pairs.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("sentence1\tsentence2\tscore\n")
        for s1, s2, sc in pairs:
            f.write(f"{s1}\t{s2}\t{sc:.6f}\n")
    meta = {"name": "wordnet-sts", "task": "sts", "instruction": INSTRUCTIONS["wordnet-sts"],
            "counts": {"pairs": len(pairs), "held_out_noun_synsets": len(held)},
            "score": "Wu-Palmer similarity (shortest-path depths)", "licence": "WordNet 3.0 licence (wordnet-base)",
            "split": "scripts/data/splits.py", "builder": "scripts/data/build_eval_suite.py"}
    write_meta(out, meta)
    print(f"build_eval_suite: wordnet-sts: {meta['counts']}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/eval")
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    for name in a.only or list(RETRIEVAL) + ["wordnet-sts"]:
        if name == "wordnet-sts":
            build_wordnet_sts(os.path.join(a.out, name))
        else:
            build_retrieval(name, os.path.join(a.out, name))


if __name__ == "__main__":
    main()
