"""Fixtures of the evaluation-suite tests. Anything missing (libullme, the default model, MiniLM, the
built data sets, pytrec_eval, sentence-transformers) fails the test that needs it: nothing is skipped.

    make test-experiments     # fetches MiniLM, builds data/eval/manpages-tiny and data/eval/lee, runs these
"""
import json
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent
REPO = EXPERIMENTS.parent
sys.path.insert(0, str(EXPERIMENTS))
sys.path.insert(0, str(REPO / "bindings" / "python"))

import ullme  # noqa: E402

MANPAGES_TINY = REPO / "data" / "eval" / "manpages-tiny"
LEE = REPO / "data" / "eval" / "lee"


def need(path, how):
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: {how}")
    return Path(path)


@pytest.fixture(scope="session")
def lib():
    try:
        return ullme._lib.lib()
    except ullme.Error as e:
        pytest.fail(f"libullme: {e} (make lib; ULLME_LIB=$PWD/build/lib/libullme.so)")


@pytest.fixture(scope="session")
def model_path(lib):
    return str(need(ullme.default_model_path(), "run scripts/fetch_models.sh"))


@pytest.fixture(scope="session")
def minilm_path():
    from evalkit.encoders import default_minilm_path
    return str(need(Path(default_minilm_path()) / "model.safetensors", "run scripts/fetch_models.sh --minilm").parent)


@pytest.fixture(scope="session")
def manpages_tiny():
    return str(need(MANPAGES_TINY / "qrels.tsv",
                    "run scripts/data/build_manpages_eval.py --limit 200 --out data/eval/manpages-tiny").parent)


@pytest.fixture(scope="session")
def lee():
    return str(need(LEE / "pairs.tsv", "run scripts/data/build_lee_sts.py").parent)


def write_retrieval_task(directory, queries, corpus, qrels, meta=None):
    """A BEIR task directory: queries [(id, text)], corpus [(id, title, text)], qrels [(qid, did, grade)]."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "queries.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries)
    with open(d / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": i, "title": ti, "text": t}) + "\n" for i, ti, t in corpus)
    with open(d / "qrels.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{c}\t{g}\n" for q, c, g in qrels)
    if meta is not None:
        (d / "meta.json").write_text(json.dumps(meta))
    return str(d)
