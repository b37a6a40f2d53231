"""The Python surface: shapes, formats, batching independence, helpers, lifetime."""
import numpy as np
import pytest

import ullme

TEXTS = ["short", "a somewhat longer sentence about lighthouses and the sea",
         "x " * 40, "", "Les phares de la côte bretonne", "字"]


def test_version_and_info(model, lib):
    assert ullme.__version__ == ullme.library_version()  # one version, written in the Swift source
    assert ullme.library_version()
    info = model.info
    for k in ("architecture", "hidden_size", "n_layers", "vocab_size", "max_positions", "bos_token_id",
              "eos_token_id", "pad_token_id", "n_parameters", "params", "path"):
        assert k in info
    assert info["hidden_size"] == model.dim > 0
    assert info["params"]["max_length"] == 512 and info["params"]["batch_size"] == 32


def test_default_model_dimension(model):
    assert model.dim == 576 and model.info["architecture"] == "llama"


def test_shapes(model):
    a = model.encode(TEXTS)
    assert a.shape == (len(TEXTS), model.dim) and a.dtype == np.float32
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    one = model.encode("short")
    assert one.shape == (model.dim,)
    np.testing.assert_array_equal(one, a[0])
    assert model.encode([]).shape == (0, model.dim)
    assert model.encode(iter(["short"])).shape == (1, model.dim)
    e = model.encode("")
    assert e.shape == (model.dim,) and np.all(np.isfinite(e))


def test_alone_vs_batch(model):
    alone = np.stack([model.encode(t) for t in TEXTS])
    for bs in (1, 2, 32):
        batch = model.encode(TEXTS, batch_size=bs)
        d = float(np.abs(alone - batch).max())
        assert d <= 1e-6, f"batch_size {bs}: max abs diff {d} between a text alone and in a batch"
    rev = model.encode(TEXTS[::-1])[::-1]
    assert float(np.abs(alone - rev).max()) <= 1e-6


def test_normalize_flag(model):
    raw = model.encode(TEXTS[:3], normalize=False)
    nrm = model.encode(TEXTS[:3])
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), nrm, atol=1e-5)


def test_formats(model):
    ins = "Retrieve passages"
    q = model.encode("text", is_query=True, instruction=ins)
    c = model.encode("text", is_query=False, instruction=ins)
    plain = model.encode("text")
    assert float(np.abs(q - c).max()) > 1e-4
    assert float(np.abs(q - plain).max()) > 1e-4
    # with no instruction the text is embedded alone, as query or candidate
    np.testing.assert_array_equal(model.encode("text", is_query=False), plain)
    np.testing.assert_array_equal(model.encode_queries(["text"], instruction=ins)[0], q)
    np.testing.assert_array_equal(model.encode_corpus(["text"], instruction=ins)[0], c)
    d = model.encode_corpus([{"title": "Pharos", "text": "a lighthouse"}, {"text": "no title"}], instruction=ins)
    want = model.encode(["Pharos a lighthouse", "no title"], is_query=False, instruction=ins)
    np.testing.assert_array_equal(d, want)


def test_bytes_and_invalid_utf8(model):
    np.testing.assert_array_equal(model.encode(b"short"), model.encode("short"))
    bad = model.encode([b"abc\xff\xfedef", b"\xc3", b"ok\x00inside"])
    assert bad.shape == (3, model.dim) and np.all(np.isfinite(bad))


def test_invalid_utf8_is_replacement(model):
    raw = b"caf\xc3 au lait \xff\xfe!"
    np.testing.assert_allclose(model.encode(raw), model.encode(raw.decode("utf-8", "replace")), atol=1e-6)
    assert model.tokenize(raw) == model.tokenize(raw.decode("utf-8", "replace"))


def test_tokenize_roundtrip(model):
    ids = model.tokenize("Hello world, lighthouses!")
    assert ids and all(isinstance(i, int) for i in ids)
    assert model.detokenize(ids) == "Hello world, lighthouses!"
    long = "word " * 500
    assert len(model.tokenize(long)) >= 500  # larger than the first buffer guess path


def test_hidden_states_and_logits(model):
    ids = model.tokenize("Hello world")
    h = model.hidden_states("Hello world")
    assert h.shape == (len(ids), model.dim)
    np.testing.assert_array_equal(h, model.hidden_states_ids(ids, "causal"))
    hb = model.hidden_states("Hello world", attention="bidirectional")
    assert float(np.abs(h[:-1] - hb[:-1]).max()) > 1e-5  # causal and bidirectional differ
    lg = model.logits("Hello world")
    assert lg.shape == (len(ids), model.info["vocab_size"])


def test_truncation_stats(model_path):
    with ullme.Model(model_path, max_length=8) as m:
        m.encode(["word " * 100, "hi"])
        assert m.last_stats["n_truncated"] == 1
        assert m.last_stats["n_texts"] == 2
        assert 8 < m.last_stats["n_tokens"] <= 16


def test_progress_bar(model):
    import tqdm  # noqa: F401  (CI installs it; missing = failure)
    a = model.encode(TEXTS * 3, show_progress_bar=True, batch_size=4)
    np.testing.assert_array_equal(a, model.encode(TEXTS * 3, show_progress_bar=False, batch_size=4))


def test_similarity_and_search(model):
    q = model.encode(["lighthouse at sea", "bread recipe"])
    d = model.encode(["The lighthouse keeper lit the lamp.", "Knead the dough and bake it.", "Tax law"])
    s = model.similarity(q, d)
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s, q @ d.T, atol=1e-5)
    rng = np.random.default_rng(0)
    Q, C = rng.standard_normal((5, 16)).astype(np.float32), rng.standard_normal((100, 16)).astype(np.float32)
    scores, idx = ullme.search(Q, C, top_k=7)
    full = Q @ C.T
    want = np.argsort(-full, axis=1)[:, :7]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(scores, np.take_along_axis(full, want, 1), rtol=1e-6)
    s1, i1 = ullme.search(Q[0], C, top_k=200)
    assert s1.shape == (100,) and i1[0] == want[0, 0]
    assert ullme.search(Q, C, top_k=0)[0].shape == (5, 0)


def test_close_and_context_manager(model_path):
    with ullme.Model(model_path) as m:
        m.encode("x")
    with pytest.raises(ullme.Error) as ei:
        m.encode("x")
    assert ei.value.status == ullme._lib.E_STATE
    m.close()  # idempotent
    m2 = ullme.Model(model_path)
    del m2  # __del__ frees


def test_gen_score_ranks_and_matches_logits(model):
    q = "what do lighthouses do?"
    good = "A lighthouse is a tower with a bright lamp that guides ships at night."
    bad = "Sourdough bread needs flour, water, salt and a lively starter."
    s_good, s_bad = model.gen_score(q, good), model.gen_score(q, bad)
    assert s_good > s_bad
    # The same number from the logits: mean log-softmax of each next token of the generation example.
    text = f"Please write a query that can be used to retrieve above passage.. Query:\n{q}\n\n{good}\n"
    ids = model.tokenize(text)
    logits = model.logits(text).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    want = np.mean([logp[t, ids[t + 1]] for t in range(len(ids) - 1)])
    assert abs(s_good - want) < 1e-4
    with pytest.raises(ullme.Error):
        model.gen_score(None, good)
