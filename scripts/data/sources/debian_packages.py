"""Debian package synopsis -> long description, from apt's package lists.

Query = the one-line synopsis, document = the long description as plain text (Debian's description
format: a lone " ." is a paragraph break, other lines are joined). Reads the Packages lists (through
`apt-cache dumpavail`: package -> source package) and the Translation-en lists (the descriptions), which
apt downloads only when asked: `apt-get update -o Acquire::Languages=en` (Docker images set
Acquire::Languages "none"). Licence: the descriptions are part of each package's metadata, distributed
by Debian with the archive (see each package's copyright file); used here as text for training/evaluation.
Key = the source package, so binary packages that share a description never straddle the split.
"""
import glob
import subprocess

LISTS = "/var/lib/apt/lists"
INSTALL_HINT = "run `apt-get update -o Acquire::Languages=en` (as root) first"


def _stanzas(text):
    for block in text.split("\n\n"):
        fields, last = {}, None
        for line in block.split("\n"):
            if line.startswith((" ", "\t")) and last:
                fields[last] += "\n" + line
            elif ":" in line:
                last, _, value = line.partition(":")
                fields[last] = value.strip()
        if fields:
            yield fields


def _list_text(path):
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], check=True,
                          capture_output=True, text=True).stdout


def archive_package_names():
    """Every binary package name in apt's downloaded Debian Packages lists (not dpkg's status)."""
    files = sorted(glob.glob(f"{LISTS}/*_binary-*_Packages*"))
    if not files:
        raise SystemExit(f"no Packages list in {LISTS}: run `apt-get update` first")
    return {l[9:].strip() for path in files for l in _list_text(path).split("\n") if l.startswith("Package: ")}


def _source_of():
    out = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True, text=True).stdout
    return {f["Package"]: f.get("Source", f["Package"]).split(" ")[0] for f in _stanzas(out) if "Package" in f}


def long_description(lines):
    paras, cur = [], []
    for l in lines:
        l = l.strip()
        if l == ".":
            if cur:
                paras.append(" ".join(cur))
            cur = []
        else:
            cur.append(l)
    if cur:
        paras.append(" ".join(cur))
    return "\n".join(paras)


def records():
    files = sorted(glob.glob(f"{LISTS}/*_main_i18n_Translation-en*"))
    if not files:
        raise SystemExit(f"debian-packages: no Translation-en list in {LISTS}: {INSTALL_HINT}")
    source = _source_of()
    seen = set()
    for path in files:
        for f in _stanzas(_list_text(path)):
            pkg, desc = f.get("Package"), f.get("Description-en")
            if not pkg or not desc or pkg in seen:
                continue
            seen.add(pkg)
            synopsis, *rest = desc.split("\n")
            body = long_description(rest)
            if len(body) < 80 or not synopsis.strip():
                continue
            yield {"source": "debian-packages", "key": source.get(pkg, pkg), "id": pkg,
                   "query": synopsis.strip(), "title": pkg, "text": body}
