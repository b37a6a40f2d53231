"""mteb 2.x runs a retrieval evaluation of a libullme model through ullme/mteb_adapter.py, on a task
defined here from a tiny man-page set (built by scripts/data/build_manpages_eval.py --limit 40 from the
Debian manpages packages; nothing is downloaded).

The encoder is `ullme.Model` itself (the default SmolLM2 model); UllmeMTEBEncoder is the explicit wrapper.

    pip install mteb pytest && pytest -q bindings/python/tests/test_mteb.py -s
"""
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mteb  # noqa: E402  (CI installs it; missing = failure)
from datasets import Dataset  # noqa: E402  (an mteb dependency)
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent

# The adapter is loaded from its file, so this works whether `ullme` is the full package (after the
# bindings branch is merged) or only this module.
_spec = importlib.util.spec_from_file_location("ullme_mteb_adapter", HERE.parent / "ullme" / "mteb_adapter.py")
adapter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(adapter)


@pytest.fixture(scope="module")
def manpages(tmp_path_factory):
    out = tmp_path_factory.mktemp("manpages40")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "data" / "build_manpages_eval.py"), "--limit", "40",
                        "--out", str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"man-page set not buildable: {r.stderr.strip()}")
    read = lambda name: [json.loads(l) for l in (out / name).read_text(encoding="utf-8").splitlines()]  # noqa: E731
    qrels = {}
    for line in (out / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    return read("queries.jsonl"), read("corpus.jsonl"), qrels


def make_task(queries, corpus, qrels):
    class ManPagesTinyRetrieval(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name="ManPagesTinyRetrieval",
            description="Linux man pages: NAME one-liner -> DESCRIPTION section (40 pages, local).",
            reference="https://www.kernel.org/doc/man-pages/",
            dataset={"path": "local/manpages-tiny", "revision": "local"},
            type="Retrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=["test"],
            eval_langs=["eng-Latn"],
            main_score="ndcg_at_10",
            date=("2023-01-01", "2023-12-31"),
            domains=["Programming", "Written"],
            task_subtypes=[],
            license="multiple",  # GPL-2+ package; pages carry their own licences
            annotations_creators="derived",
            dialect=[],
            sample_creation="found",
            bibtex_citation="",
        )

        def load_data(self, num_proc=None, **kwargs):
            split = RetrievalSplitData(
                queries=Dataset.from_list([{"id": q["_id"], "text": q["text"]} for q in queries]),
                corpus=Dataset.from_list([{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in corpus]),
                relevant_docs=qrels,
                top_ranked=None,
            )
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return ManPagesTinyRetrieval()


def test_mteb_retrieval_on_local_manpages(manpages, model_path):
    import ullme
    queries, corpus, qrels = manpages
    model = ullme.Model(model_path, max_length=256)
    model.mteb_instructions = {
        "ManPagesTinyRetrieval": "Given a one-line summary of a Linux manual page, retrieve the page's description"}
    task = make_task(queries, corpus, qrels)
    result = mteb.evaluate(model, task, cache=None, encode_kwargs={"batch_size": 16, "show_progress_bar": False})
    tr = result.task_results[0]
    scores = tr.scores["test"][0]
    print(f"[test_mteb] encoder: ullme.Model {model.path}; "
          f"ndcg_at_10={scores['ndcg_at_10']:.4f} mrr_at_10={scores['mrr_at_10']:.4f} "
          f"recall_at_10={scores['recall_at_10']:.4f}")
    assert tr.task_name == "ManPagesTinyRetrieval"
    assert 0.0 <= scores["ndcg_at_10"] <= 1.0
    assert scores["main_score"] == scores["ndcg_at_10"]
    # Better than chance (40 documents: a random ranking gives nDCG@10 ~ 0.1).
    assert scores["ndcg_at_10"] > 0.3


def test_adapter_protocol_shapes(model):
    enc = adapter.UllmeMTEBEncoder(model)
    dim = model.dim
    from mteb.models.models_protocols import EncoderProtocol
    assert isinstance(enc, EncoderProtocol) or hasattr(enc, "encode")
    batches = [{"text": ["open a file", "close a file"]}, {"text": ["read from a file descriptor"]}]
    meta = make_task([], [], {}).metadata
    e = enc.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=mteb.types.PromptType.query)
    assert e.shape == (3, dim) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    s = enc.similarity(e, e)
    assert s.shape == (3, 3) and np.allclose(np.diag(s), 1, atol=1e-5)
    assert np.allclose(enc.similarity_pairwise(e, e), 1, atol=1e-5)
    meta = enc.mteb_model_meta
    assert meta.name.startswith("libullme") and meta.similarity_fn_name is not None
    assert enc.encode_corpus([{"title": "open", "text": "open a file"}]).shape == (1, dim)
    assert enc.encode_queries(["open a file"]).shape == (1, dim)


def test_model_is_an_mteb_encoder(model):
    """ullme.Model answers mteb's calls itself, with the same vectors as the explicit wrapper."""
    batches = [{"text": ["open a file", "close a file"]}, {"text": ["read from a file descriptor"]}]
    meta = make_task([], [], {}).metadata
    for prompt in (mteb.types.PromptType.query, mteb.types.PromptType.document):
        got = model.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=prompt)
        want = adapter.UllmeMTEBEncoder(model).encode(batches, task_metadata=meta, hf_split="test",
                                                      hf_subset="default", prompt_type=prompt)
        assert got.shape == (3, model.dim) and np.array_equal(got, want)
    # query side: the task type's default instruction; document side: the text alone, candidate format
    q = model.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default",
                     prompt_type=mteb.types.PromptType.query)
    assert np.array_equal(q[0], model.encode("open a file", instruction=adapter.DEFAULT_INSTRUCTIONS["Retrieval"]))
    assert model.mteb_model_meta.name.startswith("libullme")
    assert np.allclose(np.diag(model.similarity(q, q)), 1, atol=1e-5)
    with pytest.raises(TypeError):
        model.encode(["x"], hf_split="test")  # mteb arguments without task_metadata are a mistake
