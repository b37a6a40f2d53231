"""The evaluation-set builders are deterministic (the same bytes twice) and a missing source names the
package to install. Sources: Debian's manpages + manpages-dev, the PyPI gensim 4.4.0 wheel (Lee)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def build(script, out, *extra):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "data" / script), "--out", str(out), *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"{script} failed: {r.stderr.strip()}"


def files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def test_manpages_builder_is_deterministic(tmp_path):
    build("build_manpages_eval.py", tmp_path / "a")
    build("build_manpages_eval.py", tmp_path / "b")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert {"queries.jsonl", "corpus.jsonl", "qrels.tsv"} <= set(a)
    assert a == b
    assert len(a["corpus.jsonl"].splitlines()) > 1000  # the full set (1,098 pages on Debian 12)


def test_lee_builder_is_deterministic(tmp_path):
    build("build_lee_sts.py", tmp_path / "a")
    build("build_lee_sts.py", tmp_path / "b")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert "pairs.tsv" in a and a == b
    assert len(a["pairs.tsv"].splitlines()) >= 1225


def test_missing_sources_name_the_package(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "data" / "build_manpages_eval.py"), "--out", str(tmp_path / "m"),
                        "--root", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert r.returncode != 0 and "apt-get install manpages manpages-dev" in r.stderr
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "data" / "build_lee_sts.py"), "--out", str(tmp_path / "l"),
                        "--wheel", str(tmp_path / "missing.whl")], capture_output=True, text=True)
    assert r.returncode != 0 and "gensim==4.4.0" in r.stderr
