"""The repository's layout rules: the README "Layout" map names every tracked folder and names nothing that
is not there, one test folder (no `tests/` beside `Tests/`), nothing tracked under runs/ or results/, the
version written in one source file, and the qwen3 family written only in the family table and its preset."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def tracked():
    return subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()


def layout_map():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    return {m.group(1).rstrip("/") for m in re.finditer(r"^(\S+/)\s", block, re.M)} | \
           {m.group(1) for m in re.finditer(r"^(include)/ullme\.h", block, re.M)}


def test_the_layout_map_matches_the_tree():
    files = tracked()
    top = {f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}
    second = {"/".join(f.split("/")[:2]) for f in files if f.split("/")[0] in ("Sources", "Tests") and f.count("/") >= 2}
    named = layout_map()
    missing = sorted(d for d in top | second if d not in named and not any(n.startswith(d + "/") for n in named))
    assert not missing, f"folders missing from README Layout: {missing}"
    absent = sorted(n for n in named if n != "build" and not (REPO / n).is_dir())
    assert not absent, f"README Layout names folders that do not exist: {absent}"


def test_one_test_folder_and_no_run_outputs_tracked():
    files = tracked()
    tops = {f.split("/")[0] for f in files if "/" in f}
    assert len({t.lower() for t in tops}) == len(tops), "two top-level folders differ only in case"
    assert not [f for f in files if f.split("/")[0] in ("runs", "results", "tests")]
    assert not [f for f in files if f.startswith("bench/out/")]


def test_the_version_is_written_once():
    status = (REPO / "Sources/ULLMESwift/CAPI/Status.swift").read_text(encoding="utf-8")
    version = re.search(r'^public let libraryVersion = "([^"]+)"', status, re.M).group(1)
    holders = [f for f in tracked() if f.startswith(("Sources/", "bindings/", "include/")) or f.endswith(".pc.in")]
    having = [f for f in holders if (REPO / f).is_file() and version in (REPO / f).read_text(encoding="utf-8", errors="ignore")]
    assert having == ["Sources/ULLMESwift/CAPI/Status.swift"], having


def test_a_family_lives_in_the_family_table():
    having = [f for f in tracked() if f.startswith("Sources/") and f.endswith(".swift")
              and re.search(r"\bqwen3\b", (REPO / f).read_text(encoding="utf-8"))]
    assert sorted(having) == ["Sources/ULLMESwift/Embed/EmbedderProfile.swift", "Sources/ULLMESwift/Model/ModelConfig.swift"], having
