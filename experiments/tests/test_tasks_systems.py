"""Task directories (layout, limits, instructions) and the systems spec (defaults, seeds, errors)."""
import json

import pytest

from conftest import write_retrieval_task
from evalkit.systems import load_spec
from evalkit.tasks import DEFAULT_INSTRUCTIONS, load_task

QUERIES = [("q1", "one"), ("q2", "two"), ("q3", "unjudged"), ("q4", "four")]
CORPUS = [("d1", "T1", "x"), ("d2", "", "y"), ("d3", "T3", "z"), ("d4", "T4", "w")]
QRELS = [("q1", "d1", 1), ("q1", "d3", 2), ("q2", "d2", 1), ("q3", "d1", 0), ("q4", "d4", 1)]


def test_retrieval_task_limits_and_instruction(tmp_path):
    d = write_retrieval_task(tmp_path / "manpages-x", QUERIES, CORPUS, QRELS, {"name": "manpages-x"})
    t = load_task(d)
    assert t.query_ids == ["q1", "q2", "q4"]  # q3 has no relevant document
    assert t.qrels["q1"] == {"d1": 1, "d3": 2} and t.docs[1] == {"title": "", "text": "y"}
    assert t.instruction == DEFAULT_INSTRUCTIONS["manpages"]  # "manpages-x" -> "manpages"
    assert load_task(d, limit_queries=2).query_ids == ["q1", "q2"]
    t = load_task(d, limit_docs=2)
    assert t.doc_ids == ["d1", "d2"] and t.query_ids == ["q1", "q2"] and t.qrels["q1"] == {"d1": 1}


def test_instruction_from_meta_and_missing_instruction(tmp_path):
    d = write_retrieval_task(tmp_path / "a", QUERIES, CORPUS, QRELS, {"name": "a", "instruction": "Find it"})
    assert load_task(d).instruction == "Find it"
    d = write_retrieval_task(tmp_path / "unknown", QUERIES, CORPUS, QRELS)
    with pytest.raises(ValueError, match="instruction"):
        load_task(d)
    with pytest.raises(FileNotFoundError):
        load_task(str(tmp_path / "nope"))


def test_sts_task(tmp_path):
    (tmp_path / "pairs.tsv").write_text("sentence1\tsentence2\tscore\na\tb\t0.5\nb\tc\t1\na\tc\t0\n")
    t = load_task(str(tmp_path))
    assert t.kind == "sts" and list(t.gold) == [0.5, 1.0, 0.0]
    texts, idx = t.texts()
    assert texts == ["a", "b", "c"] and idx.tolist() == [[0, 1], [1, 2], [0, 2]]
    assert load_task(str(tmp_path), limit_queries=2).pairs == [("a", "b"), ("b", "c")]


def spec(tmp_path, obj):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(obj))
    return str(p)


def test_spec_defaults_and_seeds(tmp_path):
    systems, compare, gap = load_spec(spec(tmp_path, {
        "systems": [{"name": "base"}, {"name": "CL", "doc_instruction": True, "max_length": 256,
                                       "seeds": [{"seed": 1, "adapter": "a1"}, {"seed": 2, "adapter": "a2"}]},
                    {"name": "MiniLM", "kind": "minilm"}, {"name": "BM25", "kind": "bm25"}],
        "compare": [["CL", "base"]], "gap": {"model": "CL"}}))
    base, cl, minilm, bm25 = systems
    assert (base.kind, base.runs, base.query_instruction, base.doc_instruction) == ("ullme", [{}], True, False)
    assert cl.runs == [{"max_length": 256, "adapter": "a1"}, {"max_length": 256, "adapter": "a2"}]
    assert cl.seed_labels == [1, 2] and cl.doc_instruction
    assert not minilm.query_instruction and not minilm.doc_instruction
    assert compare == [("CL", "base")] and gap == {"models": ["CL"], "base": "base", "reference": "MiniLM"}


@pytest.mark.parametrize("bad, match", [
    ({"systems": [{"name": "x", "doc_instructions": True}]}, "unknown keys"),
    ({"systems": [{"name": "x", "kind": "bert"}]}, "kind"),
    ({"systems": [{"name": "x"}, {"name": "x"}]}, "duplicate"),
    ({"systems": [{"name": "x"}], "compare": [["x", "y"]]}, "not in the spec"),
    ({"systems": [{"name": "m", "kind": "minilm", "query_instruction": True}]}, "no instruction"),
    ({"systems": [{"name": "x", "seeds": [{"adaptor": "a"}]}]}, "unknown keys"),
])
def test_spec_errors(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        load_spec(spec(tmp_path, bad))
