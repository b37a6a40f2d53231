"""GCIDE (the Collaborative International Dictionary of English, Debian `dict-gcide`) headword -> sense.

Two kinds of pairs per entry: the headword alone -> its first sense, and each quotation that illustrates
a sense (e.g. "Ere he arrive the happy isle. --Milton.") -> that sense's definition. The entry's other
senses are its natural hard negatives. Entries copied from WordNet ("[WordNet 1.5]") are left out
(WordNet is a source of its own), as are headwords that are lemmas of WordNet's held-out synsets.
Licence: GPL-3+ (/usr/share/doc/dict-gcide/copyright).
"""
import gzip
import re

DICT = "/usr/share/dictd/gcide.dict.dz"
HEAD = re.compile(r"^([A-Za-z][^\\]*?) \\[^\\]*\\,? ?(.*)$")
SENSE = re.compile(r"^\s{2,6}(?:\d+\.|\([a-z]\))\s+(.*)$")
QUOTE_AUTHOR = re.compile(r"\s*--\s*[A-Z][\w. ]*\.?\s*$")
TAGS = re.compile(r"\[(?:1913 Webster|PJC|Webster 1913 Suppl\.|Century Dict\.|[A-Z][a-z]+\.?)\]")


def _plain(s):
    s = TAGS.sub("", s).replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", s).strip()


def _entries(text):
    """(headword, [ (definition, [quotes]) ]) per entry."""
    for block in re.split(r"\n(?=[A-Za-z][^\n\\]* \\)", text):
        lines = block.split("\n")
        m = HEAD.match(lines[0])
        if not m or "[WordNet 1.5]" in block:
            continue
        word = m.group(1).strip()
        senses, cur, quotes = [], [], []

        def flush():
            if cur:
                senses.append((_plain(" ".join(cur)), quotes[:]))

        in_quote = False
        rest = lines[1:]
        depth = lines[0].count("[") - lines[0].count("]")
        while depth > 0 and rest:  # the header's etymology continues on the next lines
            depth += rest[0].count("[") - rest[0].count("]")
            rest = rest[1:]
        for line in rest:
            if not line.strip():
                in_quote = False
                continue
            sm = SENSE.match(line)
            indent = len(line) - len(line.lstrip())
            if sm:
                flush()
                cur, quotes, in_quote = [sm.group(1)], [], False
            elif indent >= 9:
                if in_quote and quotes:
                    quotes[-1] += " " + line.strip()
                else:
                    quotes.append(line.strip())
                    in_quote = True
            elif line.strip().startswith(("Syn:", "Note:")):
                flush()
                cur, quotes, in_quote = [], [], False
            elif line.strip().startswith("["):
                in_quote = False
            elif not senses and not cur and indent >= 2:
                cur = [line.strip()]
            elif cur and indent >= 2 and not in_quote:
                cur.append(line.strip())
        flush()
        senses = [(d, [_plain(QUOTE_AUTHOR.sub("", q)) for q in qs]) for d, qs in senses if len(d) >= 15]
        if senses:
            yield word, senses


def records(excluded_words=frozenset()):
    with gzip.open(DICT, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    for n, (word, senses) in enumerate(_entries(text)):
        if word.lower() in excluded_words:
            continue
        defs = [d for d, _ in senses]
        yield {"source": "gcide", "key": word.lower(), "id": f"gcide:{n}:0", "query": word,
               "title": "", "text": defs[0], "negatives": defs[1:]}
        for i, (d, qs) in enumerate(senses):
            for j, q in enumerate(qs):
                if len(q) >= 20 and word.split()[0].lower()[:4] in q.lower():
                    yield {"source": "gcide", "key": word.lower(), "id": f"gcide:{n}:{i}:{j}", "query": q,
                           "title": "", "text": d, "negatives": defs[:i] + defs[i + 1:]}
