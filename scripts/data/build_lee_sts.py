#!/usr/bin/env python3
"""Build the Lee et al. (2005) document-similarity set (STS layout) from the PyPI gensim wheel.

    scripts/data/build_lee_sts.py                 # -> data/eval/lee/

The wheel (gensim==4.4.0, LGPL-2.1-only) is fetched once with `pip download --no-deps` into
$ULLME_CACHE/pypi (default ~/.cache/ullme/pypi) and read with zipfile; nothing is installed.
(--wheel PATH uses a wheel you already have.) Files read:

    gensim/test/test_data/lee.cor             50 news documents, one per line, latin-1
    gensim/test/test_data/similarities0-1.txt 50x50 matrix of mean human ratings scaled to [0, 1];
                                              gensim's own test (gensim/test/test_lee.py) takes
                                              sim_matrix[np.triu_indices(50, 1)], i.e. the strict
                                              upper triangle in row-major order: (0,1), (0,2), ...,
                                              (0,49), (1,2), ... -> 1,225 pairs.

Output (same bytes on every run):
    pairs.tsv   sentence1<TAB>sentence2<TAB>score (header line), 1,225 rows in that order
    docs.jsonl  {"_id": "lee-00", "text": ...} the 50 documents (each pair is (i, j) as above)
    meta.json   counts, source, licence, the order convention
Tabs and newlines inside documents become single spaces. Standard library only.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import zipfile

VERSION = "4.4.0"
DOCS = "gensim/test/test_data/lee.cor"
SIMS = "gensim/test/test_data/similarities0-1.txt"


def find_wheel(cache):
    hits = sorted(glob.glob(os.path.join(cache, f"gensim-{VERSION}-*.whl")))
    if hits:
        return hits[0]
    os.makedirs(cache, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"gensim=={VERSION}", "-d", cache]
    print("build_lee_sts: " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd)
    hits = sorted(glob.glob(os.path.join(cache, f"gensim-{VERSION}-*.whl")))
    if r.returncode != 0 or not hits:
        sys.exit(f"build_lee_sts: could not get the PyPI package gensim=={VERSION} "
                 f"(pip download --no-deps gensim=={VERSION} -d {cache}); download the wheel and pass --wheel PATH")
    return hits[0]


def clean(s):
    return " ".join(s.split())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/eval/lee")
    ap.add_argument("--wheel", help="a gensim wheel (default: download gensim==%s into the cache)" % VERSION)
    default_cache = os.path.join(os.environ.get("ULLME_CACHE", os.path.expanduser("~/.cache/ullme")), "pypi")
    ap.add_argument("--cache", default=default_cache)
    a = ap.parse_args()

    wheel = a.wheel or find_wheel(a.cache)
    if not os.path.exists(wheel):
        sys.exit(f"build_lee_sts: {wheel} does not exist (the PyPI package gensim=={VERSION})")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for n in (DOCS, SIMS):
            if n not in names:
                sys.exit(f"build_lee_sts: {wheel} has no {n}; use the PyPI package gensim=={VERSION}")
        docs = [clean(l) for l in z.read(DOCS).decode("latin-1").splitlines() if l.strip()]
        rows = [l.split() for l in z.read(SIMS).decode("ascii").splitlines() if l.strip()]
    n = len(docs)
    if n != 50 or len(rows) != n or any(len(r) != n for r in rows):
        sys.exit(f"build_lee_sts: expected 50 documents and a 50x50 matrix, got {n} and {len(rows)} rows")
    # The raw tokens are written as the file spells them (no float round trip): same bytes, exact values.
    pairs = [(i, j, rows[i][j]) for i in range(n) for j in range(i + 1, n)]

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "pairs.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("sentence1\tsentence2\tscore\n")
        for i, j, s in pairs:
            f.write(f"{docs[i]}\t{docs[j]}\t{s}\n")
    with open(os.path.join(a.out, "docs.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for i, d in enumerate(docs):
            f.write(json.dumps({"_id": f"lee-{i:02d}", "text": d}, ensure_ascii=False) + "\n")
    meta = {
        "name": "lee",
        "task": "sts",
        "source": f"PyPI gensim=={VERSION}: {DOCS}, {SIMS}",
        "wheel": os.path.basename(wheel),
        "licence": "gensim is LGPL-2.1-only; the Lee et al. (2005) corpus and ratings are redistributed by "
                   "gensim with the authors' permission (see gensim/test/test_lee.py). Cite: Lee, M., "
                   "Pincombe, B., & Welsh, M. (2005). An empirical evaluation of models of text document "
                   "similarity. CogSci 2005.",
        "pair_order": "strict upper triangle, row-major: (0,1), (0,2), ..., (48,49) as np.triu_indices(50, 1)",
        "counts": {"documents": n, "pairs": len(pairs)},
    }
    with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"out": a.out, **meta["counts"], "licence": "LGPL-2.1-only (gensim)"}))


if __name__ == "__main__":
    main()
