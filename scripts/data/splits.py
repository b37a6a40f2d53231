"""Which items are held out for evaluation: one rule for the training mixture and the evaluation suite.

An item belongs to the evaluation split of its source when sha256("{source}:{key}") falls in the first
`EVAL_PERCENT[source]` percent. The key is the unit that must not straddle the split: a Debian *source*
package (its binary packages share descriptions), a GNU info manual, a WordNet synset. Sources that are
evaluation-only (the Debian FAQ) or training-only (man pages outside `manpages`/`manpages-dev`, which are
the man-page evaluation set) are listed here too, so this file is the whole policy.
"""
import hashlib

EVAL_PERCENT = {
    "debian-packages": 6,    # key: source package name
    "info-manuals": 25,      # key: manual (info file) name
}
# WordNet keeps the rule of scripts/data/build_wordnet_grl.py (its heldout.jsonl): synset "pos:offset", 5 %.
# GCIDE entries whose headword is a lemma of a held-out synset are dropped from training.
WORDNET_HELDOUT_PER_MILLE = 50
EVAL_ONLY = {"debian-faq"}                          # never trained on
TRAIN_ONLY = {"manpages-other", "gcide", "debian-docs"}  # their evaluation sets are other sources


def in_eval(source: str, key: str) -> bool:
    if source == "wordnet":
        h = hashlib.sha256(key.encode("ascii")).digest()
        return int.from_bytes(h[:8], "big") % 1000 < WORDNET_HELDOUT_PER_MILLE
    if source in EVAL_ONLY:
        return True
    if source in TRAIN_ONLY:
        return False
    h = hashlib.sha256(f"{source}:{key}".encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") % 100 < EVAL_PERCENT[source]
