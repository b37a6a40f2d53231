"""The default model: the base GGUF + the adapter shipped in adapters/default (experiments/release_model.py).

Model() must apply the shipped adapter, reproduce the embeddings recorded when it was exported, differ
from the raw base model (Model(adapter=False) or the GGUF by path), and rank the README's examples right.
"""
import json
import os
import subprocess

import numpy as np
import pytest

import ullme
from conftest import REPO

SHIPPED = REPO / "adapters" / "default"


@pytest.fixture(scope="module")
def shipped():
    for f in ("adapter_config.json", "adapter_model.safetensors", "reference-embeddings.json"):
        if not (SHIPPED / f).is_file():
            pytest.fail(f"{SHIPPED / f} missing: the default adapter is committed (make release-model makes it)")
    return SHIPPED


@pytest.fixture(scope="module")
def default_model(shipped, model_path):
    with ullme.Model() as m:
        yield m


def test_shipped_adapter_is_small_float16_peft(shipped):
    assert os.path.getsize(shipped / "adapter_model.safetensors") <= 15_000_000
    cfg = json.loads((shipped / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA"
    raw = (shipped / "adapter_model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes == {"F16"}, dtypes


def test_model_uses_the_shipped_adapter(default_model, shipped, model_path):
    assert default_model.adapter is not None
    assert os.path.samefile(os.path.join(default_model.adapter, "adapter_model.safetensors"),
                            shipped / "adapter_model.safetensors") or \
        (open(os.path.join(default_model.adapter, "adapter_model.safetensors"), "rb").read()
         == (shipped / "adapter_model.safetensors").read_bytes())
    texts = ["how do lighthouses work?", "A lighthouse guides ships."]
    with ullme.Model(model_path, adapter=shipped) as explicit:
        np.testing.assert_array_equal(default_model.encode(texts), explicit.encode(texts))


def test_reproduces_recorded_embeddings(default_model, shipped):
    ref = json.loads((shipped / "reference-embeddings.json").read_text())
    for row in ref["texts"]:
        got = default_model.encode([row["text"]], is_query=row["is_query"], instruction=row["instruction"])[0]
        want = np.asarray(row["embedding"], dtype=np.float32)
        assert got.shape == want.shape
        assert float(np.max(np.abs(got - want))) <= 1e-5, row["text"]


def test_raw_base_model_is_still_reachable(default_model, model_path):
    texts = ["The lighthouse keeper lit the lamp."]
    with ullme.Model(adapter=False) as base, ullme.Model(model_path) as by_path:
        assert base.adapter is None and by_path.adapter is None
        np.testing.assert_array_equal(base.encode(texts), by_path.encode(texts))
        assert float(base.encode(texts)[0] @ default_model.encode(texts)[0]) < 0.999


def test_readme_examples_rank_correctly(default_model):
    docs = ["Bread is baked from flour, water, yeast and salt; knead the dough, let it rise and bake it.",
            "Python is a programming language that lets you work quickly and integrate systems effectively.",
            "A lighthouse is a tower with a bright lamp that guides ships at night and warns them of rocks."]
    for query, want in (("how to bake bread", 0), ("how do lighthouses work?", 2),
                        ("which programming language should I learn?", 1)):
        scores, idx = ullme.search(default_model.encode_queries([query]), default_model.encode_corpus(docs), top_k=3)
        assert idx[0][0] == want, (query, idx[0], scores[0])


def test_cli_embed_uses_the_default_model(default_model, repo_root):
    exe = repo_root / "build" / "bin" / "ullme"
    if not exe.is_file():
        pytest.fail(f"{exe} missing: run make")
    out = subprocess.run([str(exe), "embed", "The lighthouse keeper lit the lamp."], check=True,
                         capture_output=True, text=True).stdout
    got = np.asarray(json.loads(out.strip().splitlines()[0])["embedding"], dtype=np.float32)
    want = default_model.encode(["The lighthouse keeper lit the lamp."])[0]
    assert float(np.max(np.abs(got - want))) <= 1e-6
    base = subprocess.run([str(exe), "embed", "--no-adapter", "The lighthouse keeper lit the lamp."], check=True,
                          capture_output=True, text=True).stdout
    assert json.loads(base.strip().splitlines()[0])["embedding"] != json.loads(out.strip().splitlines()[0])["embedding"]
