"""Debian documentation section heading -> section text, from the HTML of `debian-reference-en`
(Debian Reference, GPL-2+) and `debian-handbook` (The Debian Administrator's Handbook, GPL-2+ or
CC-BY-SA-3.0). The Debian FAQ (`debian-faq`) is not read here: it is an evaluation-only set.

Query = the heading without its section number, document = the text up to the next heading of any level
(tables and code blocks included as text), cut at max_chars; sections under 80 characters are skipped.
"""
import glob
import html.parser
import re

BOOKS = {
    "debian-reference": "/usr/share/debian-reference/*.en.html",
    "debian-handbook": "/usr/share/doc/debian-handbook/html/en-US/*.html",
}
HEADINGS = {"h1", "h2", "h3", "h4", "h5"}
SKIP = {"script", "style", "head"}


class _Sections(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.heading, self.body, self.in_heading, self.skip = [], None, [], False, 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
        elif tag in HEADINGS:
            self._close()
            self.in_heading, self.heading = True, []
        elif tag in ("p", "br", "li", "tr", "pre", "div"):
            self.body.append("\n")

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in HEADINGS:
            self.in_heading = False

    def handle_data(self, data):
        if self.skip:
            return
        (self.heading if self.in_heading else self.body).append(data)

    def _close(self):
        if self.heading is not None:
            self.sections.append(("".join(self.heading), "".join(self.body)))
        self.heading, self.body = None, []

    def close(self):
        super().close()
        self._close()


def cap(text, limit):
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[:cut.rfind(" ")] if " " in cut else cut


def html_sections(path):
    """(heading without its number, plain text up to the next heading) for every heading of an HTML file."""
    p = _Sections()
    with open(path, encoding="utf-8", errors="replace") as f:
        p.feed(f.read())
    p.close()
    for head, body in p.sections:
        title = re.sub(r"\s+", " ", head).strip()
        title = re.sub(r"^(?:[A-Z]\.|\d+)(?:\.\d+)*\.?\s+", "", title)  # "9.3.2. Foo" -> "Foo"
        text = re.sub(r"\s+", " ", body).strip()
        if len(title) >= 4 and len(text) >= 80 and not text.startswith("Table of Contents"):
            yield title, text


def records(max_chars=2000):
    for book, pattern in BOOKS.items():
        files = sorted(glob.glob(pattern))
        if not files:
            raise SystemExit(f"debian-docs: {pattern} not found: apt-get install debian-reference-en debian-handbook")
        for path in files:
            for k, (title, text) in enumerate(html_sections(path)):
                sid = f"{book}:{path.rsplit('/', 1)[1]}:{k}"
                yield {"source": "debian-docs", "key": sid, "id": sid, "query": title, "title": "",
                       "text": cap(text, max_chars)}
