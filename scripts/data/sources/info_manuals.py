"""GNU info manual node title -> node text, from the installed info manuals (/usr/share/info).

Query = "{manual}: {node name}" (node names such as "Overview" repeat across manuals), document = the
node's text: heading underlines, menus and cross-reference markers removed, cut at max_chars on a word
boundary. Index, licence and top nodes are skipped, as are nodes with under 80 characters of text.
Key = the manual (info file) name, so a manual is wholly in training or wholly in evaluation.
Licences: mostly the GNU Free Documentation License (each manual's copying notice).
"""
import glob
import gzip
import os
import re

INFO_DIR = "/usr/share/info"
SKIP_NODE = re.compile(r"(^Top$|Index|index$|License|Licence|Copying|^GNU Free|^Concept|^Short Contents)")
UNDERLINE = re.compile(r"^[*=\-.]{3,}$")


def _manual_files():
    by_manual = {}
    for path in sorted(glob.glob(f"{INFO_DIR}/*.info*.gz")):
        m = re.match(r"(.+?)\.info(?:-(\d+))?\.gz$", os.path.basename(path))
        if m:
            by_manual.setdefault(m.group(1), []).append((int(m.group(2) or 0), path))
    return {k: [p for _, p in sorted(v)] for k, v in sorted(by_manual.items())}


MENU_ENTRY = re.compile(r"^\* [^:]+::|^\* [^:]+: [^.]+\.")


def _clean(body):
    out, in_entry = [], False
    for line in body.split("\n"):
        s = line.strip()
        if s.startswith("* Menu:"):
            continue
        if MENU_ENTRY.match(s):
            in_entry = True
            continue
        if in_entry and line.startswith("  ") and s:
            continue  # a menu entry's continuation line
        in_entry = False
        if UNDERLINE.match(s):
            continue
        out.append(s)
    text = re.sub(r"\*[Nn]ote ([^:]+)::", r"\1", "\n".join(out))
    text = re.sub(r"\n{2,}", "\n", text)
    return re.sub(r"\s+", " ", text).strip()


def cap(text, limit):
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[:cut.rfind(" ")] if " " in cut else cut


def records(max_chars=2000):
    for manual, paths in _manual_files().items():
        raw = ""
        for p in paths:
            with gzip.open(p, "rb") as f:
                raw += f.read().decode("utf-8", errors="replace")
        for chunk in raw.split("\x1f")[1:]:
            head, _, body = chunk.lstrip("\n").partition("\n")
            m = re.search(r"Node: ([^,\t]+)", head)
            if not m or "Indirect:" in head or "Tag Table:" in head:
                continue
            node = m.group(1).strip()
            if SKIP_NODE.search(node):
                continue
            lines = body.strip("\n").split("\n")
            if len(lines) > 1 and UNDERLINE.match(lines[1].strip() or "x"):
                lines = lines[2:]  # the node's own heading repeats its title
            text = _clean("\n".join(lines))
            if len(text) >= 80:
                yield {"source": "info-manuals", "key": manual, "id": f"{manual}:{node}",
                       "query": f"{manual}: {node}", "title": "", "text": cap(text, max_chars)}
