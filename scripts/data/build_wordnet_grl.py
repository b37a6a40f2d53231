#!/usr/bin/env python3
"""Build a GRL training set (JSONL) from Princeton WordNet 3.0 as Debian's `wordnet-base` ships it.

    python3 scripts/data/build_wordnet_grl.py [--wordnet-dir /usr/share/wordnet] [--out data/grl/wordnet]
                                         [--limit N] [--max-negatives 8] [--heldout-per-mille 50]

Source: /usr/share/wordnet/data.{noun,verb,adj,adv}  (Debian/Ubuntu: `apt-get install wordnet-base`).
Standard library only. Deterministic: the same source and arguments give the same bytes (no
timestamps, no set/dict-order or hash() dependence; the split uses SHA-256).

One JSONL line per example sentence of a synset:
    {"query": <a quoted example sentence from the synset's gloss, without the quotes>,
     "positive": [<the synset's definition: the gloss up to its first quoted example>],
     "negative": [<definitions of other synsets>, ... (1 to --max-negatives)],
     "id": "<pos>:<offset>:<example number>"}
(the loader ignores "id"; it is there for tracing a line back to WordNet).

Negatives, in this order of preference:
 1. hard negatives: the other senses of the synset's words. For each word of the synset (in the
    synset's own word order), the other synsets containing that word in the same part of speech
    (file order, i.e. by offset), then those in the other parts of speech (noun, verb, adj, adv).
 2. if every word of the synset is monosemous (no other synset shares a word): sister senses, i.e.
    the other hyponyms of the synset's hypernyms (`@`, `@i`; for adjective satellites the other
    satellites of the head adjective `&`), in pointer order.
 3. otherwise the example is skipped and counted ("skipped_no_negative").
Negatives whose text equals the positive (WordNet has a few identical glosses) or repeats an
earlier negative are dropped before truncating to --max-negatives.

Held-out split: a synset (all of its examples together) goes to heldout.jsonl when
int(sha256("<pos>:<offset>")[:8 bytes]) % 1000 < --heldout-per-mille (default 50, ~5 %).
Held-out positives may still appear as negatives of training examples (they are other senses).

--limit N keeps only the first N examples (order: noun, verb, adj, adv files, by offset, then
example order) before the split, for tiny test sets; the negatives still come from all of WordNet.

Also writes README.md next to the JSONL: counts, the method above in short, and the WordNet licence
(copied from the header of the data files, which every copy must carry).
"""
import argparse
import hashlib
import json
import os
import re
import sys

POS_FILES = [("n", "data.noun"), ("v", "data.verb"), ("a", "data.adj"), ("r", "data.adv")]
EXAMPLE_RE = re.compile(r'"([^"]*)"')
ADJ_MARKER_RE = re.compile(r"\((a|p|ip)\)$")


class Synset:
    __slots__ = ("pos", "offset", "words", "pointers", "definition", "examples")

    def __init__(self, pos, offset, words, pointers, definition, examples):
        self.pos = pos            # file pos: n v a r (adjective satellites are 'a' here)
        self.offset = offset      # 8-digit string, unique within a file
        self.words = words        # lower-case lemmas, underscores kept
        self.pointers = pointers  # [(symbol, (pos, offset))]
        self.definition = definition
        self.examples = examples


def fail(msg):
    sys.stderr.write("build_wordnet_grl: error: " + msg + "\n")
    sys.exit(2)


def split_gloss(gloss):
    """Definition = the gloss before its first double quote, without a trailing ';'.
    Examples = every "..." span (attributions after the closing quote are dropped)."""
    q = gloss.find('"')
    definition = gloss if q < 0 else gloss[:q]
    definition = definition.strip().rstrip(";").strip()
    examples = []
    for m in EXAMPLE_RE.finditer(gloss):
        ex = m.group(1).strip()
        if len(ex) >= 3 and any(c.isalpha() for c in ex):
            examples.append(ex)
    return definition, examples


def parse_data_file(path, pos, licence_lines):
    synsets = []
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("  "):  # licence header: "  <n> text"
            if pos == "n":
                licence_lines.append(line.strip().split(" ", 1)[1] if " " in line.strip() else "")
            continue
        head, sep, gloss = line.partition(" | ")
        if not sep:
            head, gloss = line.rstrip(), ""
        f_ = head.split()
        try:
            offset = f_[0]
            w_cnt = int(f_[3], 16)
            words = []
            i = 4
            for _ in range(w_cnt):
                w = ADJ_MARKER_RE.sub("", f_[i]).lower()
                words.append(w)
                i += 2
            p_cnt = int(f_[i])
            i += 1
            pointers = []
            for _ in range(p_cnt):
                sym, off, ppos = f_[i], f_[i + 1], f_[i + 2]
                pointers.append((sym, ("a" if ppos == "s" else ppos, off)))
                i += 4
        except (IndexError, ValueError) as e:
            fail("%s:%d: cannot parse synset line (%s)" % (path, lineno, e))
        definition, examples = split_gloss(gloss.strip())
        synsets.append(Synset(pos, offset, words, pointers, definition, examples))
    return synsets


def heldout(pos, offset, per_mille):
    h = hashlib.sha256(("%s:%s" % (pos, offset)).encode("ascii")).digest()
    return int.from_bytes(h[:8], "big") % 1000 < per_mille


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wordnet-dir", default="/usr/share/wordnet")
    ap.add_argument("--out", default="data/grl/wordnet")
    ap.add_argument("--limit", type=int, default=0, help="keep only the first N examples (0 = all)")
    ap.add_argument("--max-negatives", type=int, default=8)
    ap.add_argument("--heldout-per-mille", type=int, default=50)
    args = ap.parse_args()
    if args.max_negatives < 1:
        fail("--max-negatives must be >= 1")

    missing = [fn for _, fn in POS_FILES if not os.path.isfile(os.path.join(args.wordnet_dir, fn))]
    if missing:
        fail("WordNet data not found: %s missing in %s. Install the Debian/Ubuntu package "
             "`wordnet-base` (apt-get install wordnet-base) or pass --wordnet-dir."
             % (", ".join(missing), args.wordnet_dir))

    licence_lines = []
    by_key = {}
    order = []
    for pos, fn in POS_FILES:
        for s in parse_data_file(os.path.join(args.wordnet_dir, fn), pos, licence_lines):
            by_key[(s.pos, s.offset)] = s
            order.append(s)

    # lemma -> synsets containing it, per pos, in file (offset) order
    senses = {}
    for s in order:
        for w in s.words:
            per_pos = senses.setdefault(w, {})
            lst = per_pos.setdefault(s.pos, [])
            if not lst or lst[-1] is not s:
                lst.append(s)

    def hard_negatives(s):
        out = []
        for same in (True, False):
            for w in s.words:
                for pos, _ in POS_FILES:
                    if (pos == s.pos) != same:
                        continue
                    for o in senses.get(w, {}).get(pos, []):
                        if o is not s:
                            out.append(o)
        return out

    def sister_negatives(s):
        out = []
        for sym, key in s.pointers:
            if sym in ("@", "@i"):
                hyper = by_key.get(key)
                if hyper is None:
                    continue
                for hsym, hkey in hyper.pointers:
                    if hsym in ("~", "~i") and hkey != (s.pos, s.offset) and hkey in by_key:
                        out.append(by_key[hkey])
            elif sym == "&" and s.pos == "a":
                head = by_key.get(key)
                if head is None:
                    continue
                out.append(head)
                for hsym, hkey in head.pointers:
                    if hsym == "&" and hkey != (s.pos, s.offset) and hkey in by_key:
                        out.append(by_key[hkey])
        return out

    def pick(s, candidates):
        seen_syn, seen_txt, out = set(), {s.definition}, []
        for o in candidates:
            k = (o.pos, o.offset)
            if k in seen_syn or not o.definition or o.definition in seen_txt:
                continue
            seen_syn.add(k)
            seen_txt.add(o.definition)
            out.append(o.definition)
            if len(out) >= args.max_negatives:
                break
        return out

    counts = {"synsets": len(order), "synsets_with_examples": 0, "examples_seen": 0,
              "train": 0, "heldout": 0, "negatives_from_other_senses": 0,
              "negatives_from_sister_senses": 0, "skipped_no_definition": 0, "skipped_no_negative": 0,
              "negatives_total": 0}
    per_pos = {p: {"train": 0, "heldout": 0} for p, _ in POS_FILES}
    os.makedirs(args.out, exist_ok=True)
    train_path = os.path.join(args.out, "train.jsonl")
    held_path = os.path.join(args.out, "heldout.jsonl")
    emitted = 0
    with open(train_path + ".tmp", "w", encoding="utf-8", newline="\n") as ft, \
            open(held_path + ".tmp", "w", encoding="utf-8", newline="\n") as fh:
        for s in order:
            if args.limit and emitted >= args.limit:
                break
            if not s.examples:
                continue
            counts["synsets_with_examples"] += 1
            if not s.definition:
                counts["skipped_no_definition"] += len(s.examples)
                continue
            neg = pick(s, hard_negatives(s))
            source = "negatives_from_other_senses"
            if not neg:
                neg = pick(s, sister_negatives(s))
                source = "negatives_from_sister_senses"
            is_held = heldout(s.pos, s.offset, args.heldout_per_mille)
            for k, ex in enumerate(s.examples):
                if args.limit and emitted >= args.limit:
                    break
                counts["examples_seen"] += 1
                if not neg:
                    counts["skipped_no_negative"] += 1
                    continue
                rec = {"query": ex, "positive": [s.definition], "negative": neg,
                       "id": "%s:%s:%d" % (s.pos, s.offset, k)}
                line = json.dumps(rec, ensure_ascii=False, separators=(", ", ": ")) + "\n"
                split = "heldout" if is_held else "train"
                (fh if is_held else ft).write(line)
                counts[split] += 1
                per_pos[s.pos][split] += 1
                counts[source] += 1
                counts["negatives_total"] += len(neg)
                emitted += 1
    os.replace(train_path + ".tmp", train_path)
    os.replace(held_path + ".tmp", held_path)

    names = {"n": "noun", "v": "verb", "a": "adjective", "r": "adverb"}
    total = counts["train"] + counts["heldout"]
    rep = []
    rep.append("# WordNet GRL training set\n")
    rep.append("Generated by `scripts/data/build_wordnet_grl.py%s` from Princeton WordNet 3.0 "
               "(Debian package `wordnet-base`, files data.{noun,verb,adj,adv}). Do not edit; "
               "re-run the script.\n" % ((" --limit %d" % args.limit) if args.limit else ""))
    rep.append("Each line: query = an example sentence of a sense, positive = that sense's definition, "
               "negative = definitions of the other senses of the same words (hard negatives), or, when "
               "every word of the sense is monosemous, of its sister senses (same hypernym / same head "
               "adjective); examples with neither are skipped. At most %d negatives per line. Held-out "
               "split: by SHA-256 of the synset's pos:offset, %d per mille.\n"
               % (args.max_negatives, args.heldout_per_mille))
    rep.append("## Counts\n")
    rep.append("| | value |\n|---|---|")
    for k in ("synsets", "synsets_with_examples", "examples_seen", "train", "heldout",
              "negatives_from_other_senses", "negatives_from_sister_senses",
              "skipped_no_definition", "skipped_no_negative"):
        rep.append("| %s | %d |" % (k, counts[k]))
    rep.append("| mean negatives per line | %.2f |" % (counts["negatives_total"] / total if total else 0.0))
    for p, _ in POS_FILES:
        rep.append("| %s train / heldout | %d / %d |" % (names[p], per_pos[p]["train"], per_pos[p]["heldout"]))
    rep.append("\n## Licence (WordNet 3.0)\n")
    rep.append("The data is derived from WordNet 3.0 and is distributed under its licence:\n")
    rep.append("```")
    rep.extend(licence_lines)
    rep.append("```\n")
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(rep))
    sys.stderr.write("build_wordnet_grl: %d train, %d heldout lines in %s (skipped: %d no negative, %d no "
                     "definition)\n" % (counts["train"], counts["heldout"], args.out,
                                        counts["skipped_no_negative"], counts["skipped_no_definition"]))


if __name__ == "__main__":
    main()
