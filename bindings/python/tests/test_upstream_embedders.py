"""The gritlm and llm2vec presets against the upstream PyPI packages themselves: GritLM 1.0.2's and LLM2Vec
0.2.3's own encode on the tiny GritLM/LLM2Vec-format models, padded batches, each package in its own venv
(LLM2Vec pins transformers 4.44), LLM2Vec also with its two stacked adapters (MNTP merged, then supervised)
made by its peft 0.12. Fixtures: scripts/fixtures/make_upstream_embedder_fixtures.py (`make fixtures`)."""
import json

import numpy as np
import pytest

import ullme
from test_embedders import assert_close, fixture


def upstream(repo_root, name):
    path = repo_root / "Tests" / "fixtures" / "generated" / "upstream" / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"missing fixture {path}: run scripts/fixtures/make_upstream_embedder_fixtures.py (make fixtures)")
    return path.parent, json.loads(path.read_text())


def unit(rows):
    rows = np.asarray(rows, np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norms > 0, rows / np.where(norms > 0, norms, 1), 0)


@pytest.mark.parametrize("name", ["gritlm", "llm2vec"])
def test_preset_equals_the_upstream_package(name, repo_root, lib):
    d, _ = fixture(repo_root, name)
    where, ref = upstream(repo_root, name)
    assert ref["versions"][name] == {"gritlm": "1.0.2", "llm2vec": "0.2.3"}[name]
    checked = 0
    for run in ref["runs"]:
        adapters = [str(where / a) for a in run["adapters"]] or None
        with ullme.Model(str(d), preset=name, max_length=ref["max_length"], adapter=adapters) as m:
            for case in run["cases"]:
                got = m.encode(case["texts"], is_query=case["is_query"], instruction=case["instruction"], batch_size=8)
                assert_close(got, unit(case["embeddings"]), (name, run["adapters"], case["instruction"][:10]))
                checked += len(case["texts"])
    assert checked >= 9
    if name == "llm2vec":  # the adapters change the embeddings
        bare, stacked = (np.asarray(r["cases"][0]["embeddings"]) for r in ref["runs"])
        assert np.abs(unit(bare) - unit(stacked)).max() > 1e-2
