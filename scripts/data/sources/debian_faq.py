"""The Debian FAQ (`debian-faq`, GPL-2+): question -> answer. Evaluation only (scripts/data/splits.py):
an FAQ-style retrieval task whose instruction and data the training mixture never sees.
Query = a section heading that is a question (ends in "?"), document = the section's text."""
import glob

from .debian_docs import cap, html_sections

FAQ = "/usr/share/doc/debian/FAQ/*.en.html"


def records(max_chars=2000):
    files = sorted(glob.glob(FAQ))
    if not files:
        raise SystemExit(f"debian-faq: {FAQ} not found: apt-get install debian-faq")
    for path in files:
        for k, (title, text) in enumerate(html_sections(path)):
            if title.endswith("?"):
                sid = f"faq:{path.rsplit('/', 1)[1][:-8]}:{k}"
                yield {"source": "debian-faq", "key": sid, "id": sid, "query": title, "title": "",
                       "text": cap(text, max_chars)}
