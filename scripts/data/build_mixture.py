#!/usr/bin/env python3
"""Build the GRL training mixture (data/grl/mixture/) from text that Debian packages ship.

    scripts/data/build_mixture.py [--out data/grl/mixture] [--per-source N]

One JSONL file per data set, in the training format {"query", "positive": [text], "negative": [texts],
"id"} (README "Fine-tuning"), with the evaluation split of scripts/data/splits.py removed, exact duplicate
queries and documents dropped (first by id kept), and 3 hard negatives per example mined with BM25 over
the data set's documents (skipping the positive, documents that share its query, and near-duplicates
of it: word-set Jaccard >= 0.6). GCIDE examples take the entry's other senses first. PER_SOURCE (or --per-source N
for all) keeps at most that many examples of a data set (smallest sha256 of the id, a deterministic spread). Same bytes on every
run on the same package versions. Sources and licences: scripts/data/sources/*.py; counts: README.md and
meta.json of the output. Needs: apt-get install wordnet-base dict-gcide manpages manpages-dev info
debian-reference-en debian-handbook bash-doc texinfo and `apt-get update -o Acquire::Languages=en`;
`make wordnet-data` first (WordNet examples come from data/grl/wordnet/train.jsonl).
"""
import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bm25 import BM25, tokens  # noqa: E402
from instructions import INSTRUCTIONS  # noqa: E402
from splits import in_eval  # noqa: E402
from sources import debian_docs, debian_packages, gcide, info_manuals, manpages_other  # noqa: E402

N_NEGATIVES = 3
# Examples kept per data set: the retrieval-like sets whole (or 3,000), the dictionaries less, so that a
# few hundred steps of batch 16 see every kind of task in proportion.
PER_SOURCE = {"debian-packages": 3000, "manpages-other": 5000, "info-manuals": 5000, "debian-docs": 5000,
              "gcide": 1500, "wordnet": 1500}
MINE_DEPTH = 30


def doc_text(r):
    return f"{r['title']} {r['text']}" if r["title"] else r["text"]


def norm(s):
    return " ".join(tokens(s))


def dedupe(recs):
    seen_q, seen_d, out = set(), set(), []
    for r in sorted(recs, key=lambda r: r["id"]):
        q, d = norm(r["query"]), norm(doc_text(r))
        if q and d and q not in seen_q and d not in seen_d and q != d:
            seen_q.add(q)
            seen_d.add(d)
            out.append(r)
    return out


def sample(recs, n):
    if not n or len(recs) <= n:
        return recs
    keep = sorted(recs, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:n]
    return sorted(keep, key=lambda r: r["id"])


def jaccard(a, b):
    a, b = set(tokens(a)), set(tokens(b))
    return len(a & b) / max(len(a | b), 1)


def mine(recs, chosen):
    """Hard negatives for the chosen records from all documents of the data set."""
    docs = [doc_text(r) for r in recs]
    index = {r["id"]: i for i, r in enumerate(recs)}
    bm = BM25(docs)
    ranked = bm.top([r["query"] for r in chosen], MINE_DEPTH + 1)
    out = []
    for r, top in zip(chosen, ranked):
        pos = doc_text(r)
        negs = [n for n in r.get("negatives", []) if n != r["text"] and jaccard(n, r["text"]) < 0.6]
        negs = negs[:N_NEGATIVES]
        for j in top:
            if len(negs) >= N_NEGATIVES:
                break
            if j == index[r["id"]] or norm(recs[j]["query"]) == norm(r["query"]):
                continue
            if docs[j] in negs or jaccard(docs[j], pos) >= 0.6:
                continue
            negs.append(docs[j])
        if negs:
            out.append({"query": r["query"], "positive": [pos], "negative": negs, "id": r["id"]})
    return out


def wordnet_examples(path, n):
    """The WordNet set of scripts/data/build_wordnet_grl.py (its training split), sampled."""
    if not os.path.exists(path):
        sys.exit(f"build_mixture: {path} missing: run `make wordnet-data` first")
    with open(path, encoding="utf-8") as f:
        recs = [json.loads(l) for l in f]
    recs = sample([dict(r, id=r["id"]) for r in recs], n)
    return [{"query": r["query"], "positive": r["positive"], "negative": r["negative"][:N_NEGATIVES],
             "id": r["id"]} for r in recs]


def heldout_wordnet_lemmas(wordnet_dir="/usr/share/wordnet"):
    """Lemmas of WordNet's held-out synsets (the wordnet evaluation sets): GCIDE must not define them."""
    import build_wordnet_grl as wn
    lemmas = set()
    for pos, fn in wn.POS_FILES:
        for s in wn.parse_data_file(os.path.join(wordnet_dir, fn), pos, []):
            if in_eval("wordnet", f"{s.pos}:{s.offset}"):
                lemmas.update(w.replace("_", " ") for w in s.words)
    return lemmas


SOURCES = {
    "debian-packages": debian_packages.records,
    "manpages-other": manpages_other.records,
    "info-manuals": info_manuals.records,
    "debian-docs": debian_docs.records,
    "gcide": lambda: gcide.records(excluded_words=heldout_wordnet_lemmas()),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/grl/mixture")
    ap.add_argument("--per-source", type=int, default=0, help="override PER_SOURCE for every data set")
    ap.add_argument("--wordnet", default="data/grl/wordnet/train.jsonl")
    ap.add_argument("--only", nargs="*", help="build only these data sets")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cap = (lambda n: a.per_source) if a.per_source else PER_SOURCE.get
    meta = {"negatives": N_NEGATIVES, "datasets": {}}
    names = list(SOURCES) + ["wordnet"]
    for name in a.only or names:
        if name == "wordnet":
            examples, counts = wordnet_examples(a.wordnet, cap(name)), {}
        else:
            recs = list(SOURCES[name]())
            train = [r for r in recs if not in_eval(r["source"], r["key"])]
            deduped = dedupe(train)
            examples = mine(deduped, sample(deduped, cap(name)))
            counts = {"records": len(recs), "train_split": len(train), "after_dedupe": len(deduped)}
        with open(os.path.join(a.out, f"{name}.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for e in examples:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
        meta["datasets"][name] = dict(counts, examples=len(examples), instruction=INSTRUCTIONS[name],
                                      file=f"{name}.jsonl")
        print(f"build_mixture: {name}: {meta['datasets'][name]}", flush=True)
    if not a.only:
        with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8", newline="\n") as f:
            f.write(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
