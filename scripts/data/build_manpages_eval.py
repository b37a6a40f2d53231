#!/usr/bin/env python3
"""Build the man-page retrieval set (BEIR layout) from the Debian `manpages` and `manpages-dev` packages.

    scripts/data/build_manpages_eval.py                         # -> data/eval/manpages/
    scripts/data/build_manpages_eval.py --limit 200 --out data/eval/manpages-tiny   # the CI version

Query = the one-line description of the NAME section (the text after "\\-"), document = the DESCRIPTION
section as plain text (roff requests and escapes stripped, cut at --max-chars on a word boundary),
title = the page name (file name without section and .gz). Pages are the regular files the two
packages install (dpkg's file lists; symlinks and ".so" redirects are aliases and are skipped);
pages lacking either section are skipped and counted. Identical descriptions become one query
relevant to every page that has it. --limit keeps the N pages with the smallest sha1(doc id), a
deterministic spread over all sections. Output (same bytes on every run):

    queries.jsonl  {"_id", "text"}          corpus.jsonl  {"_id", "title", "text"}
    qrels.tsv      query-id<TAB>corpus-id<TAB>score (header line)
    meta.json      counts, sources, package versions, licences (SPDX ids from each page's header)

Standard library only. In CI: apt-get install manpages manpages-dev.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import sys

PACKAGES = ["manpages", "manpages-dev"]
DPKG_INFO = "/var/lib/dpkg/info"

# ---------------------------------------------------------------------------------------------
# roff -> plain text

GLYPHS = {
    "aq": "'", "dq": '"', "lq": '"', "rq": '"', "oq": "'", "cq": "'", "em": "\u2014", "en": "\u2013",
    "hy": "-", "mi": "-", "pl": "+", "eq": "=", "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae",
    "tm": "\u2122", "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "ga": "`", "aa": "'", "at": "@",
    "sh": "#", "Do": "$", "ba": "|", "or": "|", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "la": "<",
    "ra": ">", "<=": "\u2264", ">=": "\u2265", "!=": "\u2260", "->": "\u2192", "<-": "\u2190",
    "mu": "\u00d7", "di": "\u00f7", "de": "\u00b0", "+-": "\u00b1", "**": "*", "ul": "_", "dg": "\u2020",
    "sc": "\u00a7", "ps": "\u00b6", "Eu": "\u20ac", "ct": "\u00a2", "Po": "\u00a3", "12": "\u00bd",
    "14": "\u00bc", "34": "\u00be", "fm": "\u2032", "sd": "\u2033", "a~": "\u00e3", "'e": "\u00e9",
}
STRINGS = {"lq": '"', "rq": '"', "R": "\u00ae", "Tm": "\u2122", "S": "", "(lq": '"', "(rq": '"'}
REQUEST_IGNORE = {
    "TH", "nf", "fi", "in", "RS", "RE", "ad", "na", "hy", "nh", "ft", "ps", "ne", "EX", "EE", "ce", "ll",
    "ta", "UE", "ME", "YS", "SY", "OP", "so", "ds", "de", "nr", "rr", "ie", "if", "el", "ig", "tr",
    "cs", "bd", "ss", "vs", "ls", "ti", "pc", "lf", "mk", "rt", "ns", "rs", "PD", "DT", "AT", "UC",
    "UR", "MT", "ev", "fam", "char", "ev", "hw", "nop", "tm", "ab", "ex", "ch", "wh", "am", "als",
    "TQ", "bp", "pl", "po", "sv", "os", "fl", "cu", "ul", "ec", "eo", "cc", "c2", "lt", "pn", "tl",
}
BREAKS = {"PP", "P", "LP", "sp", "br", "HP", "TP", "IP", "SS", "SH", "Sh", "Pp"}


def _bracket(s, i):
    """Reads an escape's name at s[i]: (xx, [name] or one character. Returns (name, next index)."""
    if i >= len(s):
        return "", i
    if s[i] == "(":
        return s[i + 1:i + 3], i + 3
    if s[i] == "[":
        j = s.find("]", i)
        j = len(s) if j < 0 else j
        return s[i + 1:j], j + 1
    return s[i], i + 1


def _delimited(s, i):
    """Skips a quoted argument such as \\w'...' starting at s[i]. Returns the next index."""
    if i >= len(s):
        return i
    d = s[i]
    j = s.find(d, i + 1)
    return len(s) if j < 0 else j + 1


def unescape(s):
    """Replaces roff escapes in one line of text with their plain-text meaning."""
    out = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = s[i + 1]
        i += 2
        if e == '"' or e == "#":  # comment to end of line
            break
        if e == "f" or e == "F":
            _, i = _bracket(s, i)
        elif e == "(" or e == "[":
            name, i = _bracket(s, i - 1)
            if name.startswith("u") and re.fullmatch(r"u[0-9A-Fa-f]{4,6}", name):
                out.append(chr(int(name[1:], 16)))
            else:
                out.append(GLYPHS.get(name, ""))
        elif e == "*":
            name, i = _bracket(s, i)
            out.append(STRINGS.get(name, ""))
        elif e == "n" or e == "g" or e == "m" or e == "M" or e == "V" or e == "Y" or e == "k":
            if i < n and s[i] in "+-":
                i += 1
            _, i = _bracket(s, i)
        elif e == "s":
            if i < n and s[i] in "+-":
                i += 1
            if i < n and s[i] in "([":
                _, i = _bracket(s, i)
            else:
                while i < n and s[i].isdigit():
                    i += 1
        elif e in "whvolLDXbZNRASxCH":
            i = _delimited(s, i)
        elif e == "-":
            out.append("-")
        elif e == "e" or e == "\\":
            out.append("\\")
        elif e in " ~0":
            out.append(" ")
        elif e == "'":
            out.append("'")
        elif e == "`":
            out.append("`")
        elif e == ".":
            out.append(".")
        elif e == "t":
            out.append("\t")
        elif e == "z":
            pass
        elif e in "&%c:/,|^)!{}dupraE":
            pass
        else:
            out.append(e)
    return "".join(out)


def split_args(rest):
    """Splits a request's arguments as roff does ("quoted args" with "" for a literal quote)."""
    args, i, n = [], 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t":
            i += 1
        if i >= n:
            break
        if rest[i] == '"':
            i += 1
            buf = []
            while i < n:
                if rest[i] == '"':
                    if i + 1 < n and rest[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                if rest[i] == "\\" and i + 1 < n:
                    buf.append(rest[i:i + 2])
                    i += 2
                    continue
                buf.append(rest[i])
                i += 1
            args.append("".join(buf))
        else:
            j = i
            while j < n and rest[j] not in " \t":
                j += 2 if rest[j] == "\\" and j + 1 < n else 1
            args.append(rest[i:j])
            i = j
    return args


def join_continuations(lines):
    out, buf = [], ""
    for line in lines:
        # a line ending in an odd number of backslashes continues on the next one
        m = re.search(r"(\\+)$", line)
        if m and len(m.group(1)) % 2 == 1:
            buf += line[:-1]
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return out


def roff_to_text(lines):
    """Converts roff source lines (one section's body) to plain text: paragraphs joined by newlines,
    words inside a paragraph separated by single spaces."""
    paragraphs, cur = [], []
    in_table = table_fmt = in_eq = False

    def brk():
        if cur:
            text = re.sub(r"\s+", " ", " ".join(cur)).strip()
            if text:
                paragraphs.append(text)
            cur.clear()

    for line in join_continuations(lines):
        if line.startswith('.\\"') or line.startswith("'\\\"") or line.startswith('\\"'):
            continue
        if in_eq:
            if line.startswith(".EN"):
                in_eq = False
            continue
        if in_table:
            if line.startswith(".TE"):
                in_table = False
                brk()
                continue
            if table_fmt:  # options and format lines end at the first line ending in "."
                if line.rstrip().endswith("."):
                    table_fmt = False
                continue
            if line.startswith("."):
                continue
            row = line.replace("T{", "").replace("T}", "")
            cur.append(unescape(row).replace("\t", " "))
            continue
        if line.startswith(".") or line.startswith("'"):
            m = re.match(r"[.'][ \t]*([^ \t]*)[ \t]*(.*)$", line)
            req, rest = m.group(1), m.group(2)
            args = split_args(rest)
            if req == "TS":
                brk()
                in_table = table_fmt = True
                continue
            if req == "EQ":
                in_eq = True
                continue
            if req in BREAKS:
                brk()
                if req in ("IP",) and args:
                    tag = unescape(args[0]).strip()
                    if tag and tag not in ("\u2022", "*", "-"):
                        cur.append(tag)
                elif req in ("SS", "SH") and args:
                    cur.append(unescape(" ".join(args)))
                    brk()
                continue
            if req in ("B", "I", "SM", "SB"):
                cur.append(unescape(" ".join(args)))
            elif req in ("BR", "BI", "IB", "IR", "RB", "RI"):
                cur.append(unescape("".join(args)))
            elif req == "MR" and len(args) >= 2:
                cur.append(unescape(args[0]) + "(" + unescape(args[1]) + ")" + (unescape(args[2]) if len(args) > 2 else ""))
            elif req in REQUEST_IGNORE or req == "" or req.startswith("\\"):
                if req in ("nf", "fi", "EX", "EE"):
                    brk()
            # unknown requests are dropped
            continue
        cur.append(unescape(line))
    brk()
    return "\n".join(paragraphs)


def sections(lines):
    """Splits a page into {SECTION NAME: [lines]} on .SH (first occurrence of a name wins)."""
    out, name, body = {}, None, []
    for line in join_continuations(lines):
        m = re.match(r"\.SH\s*(.*)$", line)
        if m:
            if name is not None and name not in out:
                out[name] = body
            name = " ".join(unescape(a) for a in split_args(m.group(1))).strip().upper()
            body = []
        elif name is not None:
            body.append(line)
    if name is not None and name not in out:
        out[name] = body
    return out


def name_description(name_lines):
    """The NAME section's one-liner after "\\-" (or None)."""
    raw = " ".join(l for l in name_lines if not l.startswith('.\\"'))
    idx = raw.find("\\-")
    if idx < 0:
        return None
    desc = roff_to_text(raw[idx + 2:].split("\n")).replace("\n", " ").strip()
    return desc or None


def cap(text, limit):
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sp = max(cut.rfind(" "), cut.rfind("\n"))
    return (cut[:sp] if sp > limit // 2 else cut).rstrip()


# ---------------------------------------------------------------------------------------------

def package_files(pkg):
    lst = os.path.join(DPKG_INFO, pkg + ".list")
    if not os.path.exists(lst):
        lst = os.path.join(DPKG_INFO, pkg + ":all.list")
    if not os.path.exists(lst):
        sys.exit(f"build_manpages_eval: the Debian package '{pkg}' is not installed "
                 f"(no {DPKG_INFO}/{pkg}.list). Install it: apt-get install manpages manpages-dev")
    with open(lst, encoding="utf-8") as f:
        return [l.strip() for l in f if re.match(r"/usr/share/man/man\d/[^/]+\.gz$", l.strip())]


def package_version(pkg):
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8") as f:
            block = None
            for line in f:
                if line.startswith("Package: "):
                    block = line.split(": ", 1)[1].strip()
                elif block == pkg and line.startswith("Version: "):
                    return line.split(": ", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/eval/manpages")
    ap.add_argument("--limit", type=int, default=0, help="keep N pages (smallest sha1 of the doc id); 0 = all")
    ap.add_argument("--max-chars", type=int, default=2000)
    ap.add_argument("--root", default="", help="prefix for the package paths (testing)")
    a = ap.parse_args()

    paths = sorted(set(p for pkg in PACKAGES for p in package_files(pkg)))
    counts = {"files": len(paths), "symlinks": 0, "so_redirects": 0, "missing": 0, "no_name": 0,
              "no_description": 0, "pages": 0}
    docs = []  # (doc_id, title, text, query, licence)
    for path in paths:
        full = a.root + path
        if os.path.islink(full):
            counts["symlinks"] += 1
            continue
        if not os.path.exists(full):
            counts["missing"] += 1
            continue
        with gzip.open(full, "rb") as f:
            src = f.read().decode("utf-8", errors="replace")
        lines = src.split("\n")
        if any(l.startswith(".so ") for l in lines[:5]) and not any(l.startswith(".SH") for l in lines):
            counts["so_redirects"] += 1
            continue
        lic = "see /usr/share/doc/manpages/copyright"
        for l in lines[:60]:
            m = re.search(r"SPDX-License-Identifier:\s*(.+)$", l)
            if m:
                lic = m.group(1).strip()
                break
        secs = sections(lines)
        query = name_description(secs.get("NAME", []))
        body = roff_to_text(secs.get("DESCRIPTION", [])) if "DESCRIPTION" in secs else ""
        if not query:
            counts["no_name"] += 1
            continue
        if not body:
            counts["no_description"] += 1
            continue
        base = os.path.basename(path)[:-3]  # open.2
        title = base.rsplit(".", 1)[0]
        docs.append((base, title, cap(body, a.max_chars), query, lic))
    counts["pages"] = len(docs)
    if not docs:
        sys.exit("build_manpages_eval: no usable pages found; install: apt-get install manpages manpages-dev")

    if a.limit and a.limit < len(docs):
        docs = sorted(docs, key=lambda d: hashlib.sha1(d[0].encode()).hexdigest())[:a.limit]
    docs.sort(key=lambda d: d[0])

    # one query per distinct description, relevant to every page that has it
    by_query = {}
    for d in docs:
        by_query.setdefault(d[3], []).append(d[0])
    queries = sorted(((ids[0], q, ids) for q, ids in by_query.items()), key=lambda x: x[0])

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for doc_id, title, text, _, _ in docs:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "queries.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for first, q, _ in queries:
            f.write(json.dumps({"_id": "q:" + first, "text": q}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "qrels.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for first, _, ids in queries:
            for doc_id in ids:
                f.write(f"q:{first}\t{doc_id}\t1\n")
    licences = {}
    for d in docs:
        licences[d[4]] = licences.get(d[4], 0) + 1
    meta = {
        "name": "manpages" if not a.limit else f"manpages-limit{a.limit}",
        "task": "retrieval",
        "source": {p: package_version(p) for p in PACKAGES},
        "package_licence": "GPL-2+ (see /usr/share/doc/manpages/copyright); pages carry their own licences below",
        "page_licences": dict(sorted(licences.items())),
        "counts": dict(counts, corpus=len(docs), queries=len(queries),
                       qrels=sum(len(x[2]) for x in queries),
                       duplicate_descriptions=len(docs) - len(queries)),
        "max_chars": a.max_chars,
        "limit": a.limit,
    }
    with open(os.path.join(a.out, "meta.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"out": a.out, **meta["counts"], "licences": meta["page_licences"]}, indent=None))


if __name__ == "__main__":
    main()
