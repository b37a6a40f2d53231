"""The training mixture never touches the evaluation sets, and trains with the instructions they use.

Needs the generated data (make mixture-data eval-suite-data); a missing file fails the test."""
import json
import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "data"))
from bm25 import tokens  # noqa: E402
from instructions import INSTRUCTIONS  # noqa: E402

MIXTURE = os.path.join(ROOT, "data", "grl", "mixture")
EVAL = os.path.join(ROOT, "data", "eval")
RETRIEVAL = ["debian-packages", "info-manuals", "debian-faq", "manpages"]


def norm(s):
    return " ".join(tokens(s))


def lines(path):
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run make mixture-data eval-suite-data")
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f]


@pytest.fixture(scope="module")
def training_texts():
    cfg = yaml.safe_load(open(os.path.join(ROOT, "experiments", "configs", "default-model.yaml")))
    texts = set()
    for d in cfg["data"]:
        for e in lines(os.path.join(ROOT, d["file"])):
            texts.add(norm(e["query"]))
            texts.update(norm(t) for t in e["positive"] + e["negative"])
    return texts


@pytest.mark.parametrize("task", RETRIEVAL)
def test_no_evaluation_document_or_query_is_trained_on(task, training_texts):
    corpus = lines(os.path.join(EVAL, task, "corpus.jsonl"))
    queries = lines(os.path.join(EVAL, task, "queries.jsonl"))
    docs = {norm(f"{d['title']} {d['text']}" if d["title"] else d["text"]) for d in corpus}
    docs |= {norm(d["text"]) for d in corpus}
    leaked = [d for d in docs if d in training_texts]
    assert len(leaked) <= 0.01 * len(docs), f"{task}: {len(leaked)} of {len(docs)} documents in the mixture"
    if task != "manpages":  # man-page one-liners such as "print help" recur across unrelated pages
        asked = [q for q in queries if norm(q["text"]) in training_texts]
        assert len(asked) <= 0.01 * len(queries), f"{task}: {len(asked)} queries in the mixture"


def test_wordnet_sts_definitions_are_not_trained_on(training_texts):
    path = os.path.join(EVAL, "wordnet-sts", "pairs.tsv")
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run make eval-suite-data")
    with open(path, encoding="utf-8") as f:
        defs = {norm(s) for l in f.readlines()[1:] for s in l.split("\t")[:2]}
    leaked = [d for d in defs if d in training_texts]
    assert len(leaked) <= 0.01 * len(defs), f"{len(leaked)} of {len(defs)} held-out definitions in the mixture"


def test_config_instructions_are_the_suite_instructions():
    cfg = yaml.safe_load(open(os.path.join(ROOT, "experiments", "configs", "default-model.yaml")))
    for d in cfg["data"]:
        assert d["instruction"] == INSTRUCTIONS[d["name"]], d["name"]
