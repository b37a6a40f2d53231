"""Man-page NAME one-liner -> DESCRIPTION, from the installed English man pages of Debian packages (those
apt's lists know; pages of third-party packages, e.g. the 16,000 generated gcloud pages of a cloud SDK, are
left out) except those of the `manpages` and `manpages-dev` packages (the man-page evaluation set, scripts/data/build_manpages_eval.py,
whose roff reader this uses). A page whose name (e.g. "open") is also an evaluation page is skipped too.
Licence: each page's own (the packages' copyright files); training use only.
"""
import glob
import gzip
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import build_manpages_eval as mp  # noqa: E402
from .debian_packages import archive_package_names  # noqa: E402

MAN_ROOT = "/usr/share/man"


def _debian_owned_pages():
    """Man page paths -> owning package, for packages apt's Debian lists know."""
    known = archive_package_names()
    owned = {}
    for lst in glob.glob(f"{mp.DPKG_INFO}/*.list"):
        pkg = os.path.basename(lst)[:-5].split(":")[0]
        if pkg not in known:
            continue
        with open(lst, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(MAN_ROOT + "/man"):
                    owned[line.rstrip("\n")] = pkg
    return owned


def records(max_chars=2000):
    eval_paths = set(p for pkg in mp.PACKAGES for p in mp.package_files(pkg))
    eval_names = {os.path.basename(p)[:-3].rsplit(".", 1)[0] for p in eval_paths}
    owned = _debian_owned_pages()
    for path in sorted(glob.glob(f"{MAN_ROOT}/man[1-8]/*.gz")):
        if path in eval_paths or path not in owned or os.path.islink(path):
            continue
        base = os.path.basename(path)[:-3]
        name = base.rsplit(".", 1)[0]
        if name in eval_names:
            continue
        try:
            with gzip.open(path, "rb") as f:
                lines = f.read().decode("utf-8", errors="replace").split("\n")
        except (OSError, EOFError):
            continue
        if any(l.startswith(".so ") for l in lines[:5]) and not any(l.startswith(".SH") for l in lines):
            continue
        secs = mp.sections(lines)
        query = mp.name_description(secs.get("NAME", []))
        body = mp.roff_to_text(secs["DESCRIPTION"]) if "DESCRIPTION" in secs else ""
        if query and len(body) >= 80:
            yield {"source": "manpages-other", "key": base, "id": base, "query": query, "title": name,
                   "text": mp.cap(body, max_chars)}
