"""Embedders people use, run exactly: sentence-transformers directories (pooling, prompts, include_prompt,
Normalize, max_seq_length) loaded with no other argument equal SentenceTransformer(dir).encode(...,
normalize_embeddings=True); GenC-format models with the genc-* presets equal a reference written from GenC's
formatting and pooling rules. Fixtures: scripts/fixtures/make_embedder_fixtures.py (`make fixtures`)."""
import json

import numpy as np
import pytest

import ullme

ST = ["st-qwen3", "st-mistral", "st-llama"]
GENC = {"genc-llama3": "genc-llama3", "genc-mistral": "genc-mistral"}
MIN_COS = 0.99999


def fixture(repo_root, name):
    d = repo_root / "Tests" / "fixtures" / "generated" / "embedders" / name
    if not (d / "expected.json").is_file():
        pytest.fail(f"missing fixture {d}: run scripts/fixtures/make_embedder_fixtures.py (make fixtures)")
    return d, json.loads((d / "expected.json").read_text())


def assert_close(got, want, what):
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    assert got.shape == want.shape, what
    for i, (g, w) in enumerate(zip(got, want)):
        nw, ng = np.linalg.norm(w), np.linalg.norm(g)
        if nw == 0:  # a text that is all prompt: a zero vector, not NaN
            assert ng == 0 and np.isfinite(g).all(), (what, i, ng)
            continue
        cos = float(g @ w / (ng * nw))
        assert cos >= MIN_COS, (what, i, cos)
        assert abs(ng - nw) < 1e-4, (what, i, ng, nw)


@pytest.mark.parametrize("name", ST)
def test_sentence_transformers_directory(name, repo_root, lib):
    d, exp = fixture(repo_root, name)
    with ullme.Model(str(d)) as m:
        assert m.embedder["name"] == "sentence-transformers"
        assert m.embedder["attention"] == "causal" and m.embedder["max_length"] == 48
        for case in exp["cases"]:
            kw = {k: case[k] for k in ("prompt", "prompt_name") if k in case}
            assert_close(m.encode(case["texts"], **kw), case["embeddings"], (name, kw))
            # batch-invariant: each text alone gives the same vector
            assert_close(np.stack([m.encode(t, **kw) for t in case["texts"]]), case["embeddings"], (name, kw, "alone"))
            if "truncated_embeddings" in case:
                assert_close(m.encode(case["texts"], truncate_dim=case["truncate_dim"], **kw),
                             case["truncated_embeddings"], (name, "truncate_dim"))
        for t, ids in exp["tokens"].items():
            assert m.tokenize(t) == ids


def test_encode_query_document_use_the_named_prompts(repo_root, lib):
    d, exp = fixture(repo_root, "st-qwen3")
    q = next(c for c in exp["cases"] if c.get("prompt_name") == "query")
    doc = next(c for c in exp["cases"] if c.get("prompt_name") == "document")
    with ullme.Model(str(d)) as m:
        assert m.embedder["pooling"] == "lasttoken" and m.embedder["normalize"] is True
        assert set(m.prompts) == {"query", "document"}
        assert_close(m.encode_query(q["texts"]), q["embeddings"], "encode_query")
        assert_close(m.encode_document(doc["texts"]), doc["embeddings"], "encode_document")
        with pytest.raises(ullme.Error, match="prompt name \"nope\" not found"):
            m.encode(["x"], prompt_name="nope")
    # Model-level truncate_dim applies to every call, re-normalised.
    with ullme.Model(str(d), truncate_dim=q["truncate_dim"]) as m:
        assert_close(m.encode_query(q["texts"]), q["truncated_embeddings"], "Model(truncate_dim)")


def test_qwen3_embedding_preset_equals_the_st_query_prompt(repo_root, lib):
    """The qwen3-embedding preset's template "Instruct: {instruction}\\nQuery:{text}" (documents bare) on the
    same weights gives sentence-transformers' query/document embeddings."""
    d, exp = fixture(repo_root, "st-qwen3")
    q = next(c for c in exp["cases"] if c.get("prompt_name") == "query")
    doc = next(c for c in exp["cases"] if c.get("prompt_name") == "document")
    instr = "Given a web search query, retrieve relevant passages that answer the query"
    with ullme.Model(str(d), preset="qwen3-embedding", max_length=48) as m:  # ST truncates these at 48
        assert m.embedder["name"] == "qwen3-embedding"
        assert_close(m.encode(q["texts"], instruction=instr), q["embeddings"], "preset query")
        assert_close(m.encode(doc["texts"], is_query=False, instruction=instr), doc["embeddings"], "preset document")


def test_explicit_arguments_override_the_metadata(repo_root, lib):
    d, exp = fixture(repo_root, "st-mistral")
    case = next(c for c in exp["cases"] if c.get("prompt_name") == "document")
    with ullme.Model(str(d)) as m:
        auto = m.encode(case["texts"], prompt_name="document")
        incl = m.encode(case["texts"], prompt_name="document", exclude_prompt=False)
    assert np.abs(auto - incl).max() > 1e-3  # the prompt's tokens change the mean
    with ullme.Model(str(d), pooling="mean", attention="causal") as m:
        assert_close(m.encode(case["texts"], prompt_name="document"), case["embeddings"], "explicit = metadata")
    with ullme.Model(str(d), attention="bidirectional") as m:
        assert m.embedder["attention"] == "causal" and m.info["params"]["attention"] == ullme._lib.ATTENTION_BIDIRECTIONAL
        assert np.abs(m.encode(case["texts"], prompt_name="document") - auto).max() > 1e-3
    with ullme.Model(str(d), max_length=8) as m:
        m.encode(case["texts"], prompt_name="document")
        assert m.last_stats["n_truncated"] >= 3


@pytest.mark.parametrize("name", sorted(GENC))
def test_genc_preset_matches_the_genc_reference(name, repo_root, lib):
    d, exp = fixture(repo_root, name)
    with ullme.Model(str(d), preset=GENC[name], max_length=exp["max_length"]) as m:
        assert m.embedder["exclude_prompt"] is True and m.embedder["attention"] == "bidirectional"
        for case in exp["cases"]:
            assert_close(m.encode(case["texts"], instruction=case["instruction"]), case["embeddings"],
                         (name, case["instruction"]))
            assert_close(m.encode(case["texts"], is_query=False, instruction=case["instruction"]), case["embeddings"],
                         (name, "document side"))


def test_presets_and_errors(repo_root, lib):
    d, _ = fixture(repo_root, "genc-mistral")
    with ullme.Model(str(d)) as m:  # no sentence-transformers files: today's defaults
        assert m.embedder["name"] == "ullme" and m.embedder["pooling"] == "mean"
        assert m.embedder["attention"] == "bidirectional" and m.prompts == {}
    with pytest.raises(ullme.Error, match="unknown preset"):
        ullme.Model(str(d), preset="nope")
    for preset in ("ullme", "genc-llama3", "genc-mistral", "gritlm", "llm2vec", "e5-instruct", "qwen3-embedding"):
        with ullme.Model(str(d), preset=preset) as m:
            assert m.embedder["name"] == preset
            v = m.encode(["hello world", ""], instruction="Represent it")
            assert np.isfinite(v).all()


@pytest.mark.parametrize("name,preset", [("e5-mistral", "e5-instruct"), ("gritlm", "gritlm"), ("llm2vec", "llm2vec")])
def test_preset_matches_its_reference_rules(name, preset, repo_root, lib):
    """e5 (last token + EOS, causal), GritLM (mean without the instruction's tokens, bidirectional) and LLM2Vec
    (mean over the text's own tokens) against references written from their encode code's rules."""
    d, exp = fixture(repo_root, name)
    with ullme.Model(str(d), preset=preset, max_length=exp["max_length"]) as m:
        for case in exp["cases"]:
            got = m.encode(case["texts"], is_query=case["is_query"], instruction=case["instruction"])
            assert_close(got, case["embeddings"], (name, case["instruction"][:10], case["is_query"]))


def test_custom_architectures_name_loads_by_model_type(repo_root, lib, tmp_path):
    """A merged checkpoint whose `architectures` names a custom class (GenC, LLM2Vec, GritLM ship such configs,
    with auto_map) loads by its `model_type`."""
    import shutil
    src = repo_root / "Tests" / "fixtures" / "tiny-llama"
    for f in ("model.safetensors", "tokenizer.json"):
        shutil.copy(src / f, tmp_path / f)
    cfg = json.loads((src / "config.json").read_text())
    cfg["architectures"] = ["MistralBiForMNTP"]
    cfg["auto_map"] = {"AutoModel": "modeling_custom.MistralBiModel"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with ullme.Model(str(src)) as a, ullme.Model(str(tmp_path)) as b:
        assert b.info["architecture"] == "llama"
        np.testing.assert_array_equal(a.encode(["hello world"]), b.encode(["hello world"]))


def test_cli_prompt_name_and_preset(repo_root, lib, cli):
    """`ullme embed --prompt-name` / `--truncate-dim` / `--prompt` / `--preset` give the library's
    (= sentence-transformers') vectors."""
    import subprocess
    d, exp = fixture(repo_root, "st-qwen3")
    q = next(c for c in exp["cases"] if c.get("prompt_name") == "query")
    p = next(c for c in exp["cases"] if "prompt" in c)
    texts = q["texts"][:2]

    def run(*args):
        r = subprocess.run([str(cli), "embed", "--model", str(d), "--quiet", *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return [json.loads(line)["embedding"] for line in r.stdout.splitlines()]

    assert_close(run("--prompt-name", "query", *texts), q["embeddings"][:2], "cli --prompt-name")
    assert_close(run("--prompt-name", "query", "--truncate-dim", "16", *texts), q["truncated_embeddings"][:2],
                 "cli --truncate-dim")
    assert_close(run("--prompt", p["prompt"], *p["texts"]), p["embeddings"], "cli --prompt")
    instr = "Given a web search query, retrieve relevant passages that answer the query"
    assert_close(run("--preset", "qwen3-embedding", "--max-length", "48", "--instruction", instr, *texts),
                 q["embeddings"][:2], "cli --preset")
    r = subprocess.run([str(cli), "embed", "--model", str(d), "--prompt-name", "nope", "x"], capture_output=True, text=True)
    assert r.returncode != 0 and "nope" in r.stderr
