"""Code written for sentence-transformers' `SentenceTransformer.encode` runs unchanged on `ullme.Model`:
wrapper bodies in the style of LangChain's HuggingFaceEmbeddings, LlamaIndex's HuggingFaceEmbedding and
Haystack's SentenceTransformers embedders (written here in our own words), sentence-transformers' own
`util` functions on our outputs, and its quantisation as the reference for `encode(precision=...)`.

Needs torch and sentence-transformers (CI installs them; missing = failure).
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch  # noqa: F401  (convert_to_tensor=True; missing = failure)
from sentence_transformers import util as st_util  # missing = failure
from sentence_transformers.util.quantization import quantize_embeddings as st_quantize

import ullme
from ullme import _lib as L

DOCS = ["The lighthouse keeper lit the lamp at dusk.", "Knead the dough and let it rise overnight.",
        "Ships use the lighthouse beam to find the harbour.", "Income tax is due in April."]
QUERY = "how do ships find the harbour at night?"


# ---- wrappers as the frameworks write them (their bodies, in our words) -----------------------------
class LangChainStyleEmbeddings:
    """LangChain's HuggingFaceEmbeddings: a client with encode_kwargs; lists of floats out."""

    def __init__(self, client, encode_kwargs=None, show_progress=False):
        self._client = client
        self.encode_kwargs = encode_kwargs or {}
        self.show_progress = show_progress

    def embed_documents(self, texts):
        texts = [t.replace("\n", " ") for t in texts]
        vectors = self._client.encode(texts, show_progress_bar=self.show_progress, **self.encode_kwargs)
        if isinstance(vectors, list):
            raise TypeError("expected a numpy array or tensor, got a list: use convert_to_numpy=True")
        return vectors.tolist()

    def embed_query(self, text):
        return self.embed_documents([text])[0]


class LlamaIndexStyleEmbedding:
    """LlamaIndex's HuggingFaceEmbedding: batch_size and normalize keywords, tolist() of a numpy array."""

    def __init__(self, model, embed_batch_size=10, normalize=True):
        self._model, self.embed_batch_size, self.normalize = model, embed_batch_size, normalize

    def _embed(self, sentences):
        return self._model.encode(sentences, batch_size=self.embed_batch_size,
                                  normalize_embeddings=self.normalize).tolist()

    def get_query_embedding(self, query):
        return self._embed([query])[0]

    def get_text_embedding_batch(self, texts):
        return self._embed(texts)

    @property
    def dimension(self):
        return self._model.get_sentence_embedding_dimension()


class HaystackStyleBackend:
    """Haystack's SentenceTransformers backend: precision and normalize_embeddings, numpy to lists."""

    def __init__(self, model):
        self.model = model

    def embed(self, data, **kwargs):
        return self.model.encode(data, **kwargs).tolist()


def run_document_embedder(backend, texts, batch_size=32, progress_bar=False, normalize_embeddings=False,
                          precision="float32", encode_kwargs=None):
    return backend.embed(texts, batch_size=batch_size, show_progress_bar=progress_bar,
                         normalize_embeddings=normalize_embeddings, precision=precision, **(encode_kwargs or {}))


# ---- tests ---------------------------------------------------------------------------------------------
def test_langchain_style_wrapper(model):
    emb = LangChainStyleEmbeddings(model, encode_kwargs={"normalize_embeddings": True, "batch_size": 2})
    docs = emb.embed_documents(DOCS)
    q = emb.embed_query(QUERY)
    assert len(docs) == len(DOCS) and all(len(v) == model.dim for v in docs) and isinstance(q[0], float)
    np.testing.assert_array_equal(np.array(docs, dtype=np.float32), model.encode(DOCS))
    np.testing.assert_array_equal(np.array(q, dtype=np.float32), model.encode(QUERY))
    scores = np.array(docs) @ np.array(q)
    assert int(np.argmax(scores)) == 2, scores   # the harbour passage


def test_llamaindex_style_wrapper(model):
    emb = LlamaIndexStyleEmbedding(model, embed_batch_size=3)
    assert emb.dimension == model.dim == 576
    batch = np.array(emb.get_text_embedding_batch(DOCS), dtype=np.float32)
    np.testing.assert_array_equal(batch, model.encode(DOCS))
    raw = LlamaIndexStyleEmbedding(model, normalize=False).get_query_embedding(QUERY)
    np.testing.assert_array_equal(np.array(raw, dtype=np.float32), model.encode(QUERY, normalize=False))
    assert abs(float(np.linalg.norm(raw)) - 1) > 1e-3   # really not normalised


def test_haystack_style_embedder_with_quantisation(model):
    backend = HaystackStyleBackend(model)
    floats = np.array(run_document_embedder(backend, DOCS, normalize_embeddings=True), dtype=np.float32)
    np.testing.assert_array_equal(floats, model.encode(DOCS))
    for precision in ("int8", "uint8", "binary", "ubinary"):
        got = np.array(run_document_embedder(backend, DOCS, normalize_embeddings=True, precision=precision))
        want = st_quantize(floats, precision=precision)
        np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=precision)
        direct = model.encode(DOCS, precision=precision)
        assert direct.dtype == want.dtype and direct.shape == want.shape, (precision, direct.dtype, want.dtype)
        np.testing.assert_array_equal(direct, want)
    assert model.encode(DOCS, precision="ubinary").shape == (len(DOCS), model.dim // 8)


def test_sentence_transformers_util_on_our_tensors(model):
    q = model.encode(QUERY, convert_to_tensor=True)
    c = model.encode(DOCS, convert_to_tensor=True, normalize_embeddings=True)
    assert isinstance(q, torch.Tensor) and q.shape == (model.dim,) and q.dtype == torch.float32
    np.testing.assert_allclose(st_util.cos_sim(q, c).numpy(), model.similarity(q.numpy(), c.numpy()), atol=1e-6)
    hits = st_util.semantic_search(q, c, top_k=2)[0]
    assert hits[0]["corpus_id"] == 2 and len(hits) == 2
    np.testing.assert_array_equal(c.numpy(), model.encode(DOCS))


def test_attributes(model):
    assert model.get_sentence_embedding_dimension() == model.dim == 576
    assert model.max_seq_length == 512
    assert model.similarity_fn_name == "cosine"
    assert model.device == "cpu"
    with pytest.raises(ullme.Error, match="max_length=128"):
        model.max_seq_length = 128
    e = model.encode(DOCS)
    s = model.similarity(e, e)
    assert s.shape == (4, 4)
    np.testing.assert_allclose(np.diag(s), 1, atol=1e-5)
    np.testing.assert_allclose(model.similarity_pairwise(e, e[::-1]), np.diag(s[:, ::-1]), atol=1e-6)
    with pytest.raises(ullme.Error):
        model.similarity_pairwise(e, e[:2])


def test_keywords(model):
    base = model.encode(DOCS)
    np.testing.assert_array_equal(model.encode(DOCS, device="cpu"), base)
    np.testing.assert_array_equal(model.encode(DOCS, normalize_embeddings=False), model.encode(DOCS, normalize=False))
    lst = model.encode(DOCS, convert_to_numpy=False)
    assert isinstance(lst, list) and len(lst) == 4
    np.testing.assert_array_equal(np.stack(lst), base)
    np.testing.assert_array_equal(model.encode(DOCS, output_value="sentence_embedding"), base)
    for device in ("cuda", "mps", "cuda:0", ["cpu", "cpu"]):
        with pytest.raises(ullme.Error, match="CPU only") as ei:
            model.encode(DOCS, device=device)
        assert ei.value.status == L.E_UNSUPPORTED
    with pytest.raises(ullme.Error, match="output type"):
        model.encode(DOCS, precision="bf16")
    with pytest.raises(ullme.Error, match="hidden_states"):
        model.encode(DOCS, output_value="token_embeddings")
    with pytest.raises(ullme.Error, match="at least two texts"):
        model.encode(DOCS[0], precision="int8")
    with pytest.raises(TypeError, match="disagree"):
        model.encode(DOCS, normalize=False, normalize_embeddings=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        model.encode(DOCS, pool={"processes": []})


@pytest.mark.parametrize("bad, where", [(123, "not int"), (None, "not NoneType"), (3.5, "not float"),
                                        ({"a": 1}, "is a dict"), ([1, 2], r"sentences\[0\]"),
                                        (["ok", {"text": "x"}], r"sentences\[1\] must be str or bytes, not dict"),
                                        (["ok", None], r"sentences\[1\]")])
def test_bad_sentences_are_errors(model, bad, where):
    with pytest.raises(ullme.Error, match=where) as ei:
        model.encode(bad)
    assert ei.value.status == L.E_ARG


def test_convert_to_tensor_without_torch_is_a_clear_error(repo_root):
    """In a process where torch cannot be imported: convert_to_tensor=True is an ullme.Error naming torch,
    and numpy output still works."""
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None          # import torch -> ImportError
        sys.path.insert(0, sys.argv[1])
        import ullme
        m = ullme.Model()
        assert m.encode(["a", "b"]).shape == (2, m.dim)
        try:
            m.encode(["a"], convert_to_tensor=True)
        except ullme.Error as e:
            print(e.status_name, e.message)
        else:
            raise SystemExit("no error")
    """)
    r = subprocess.run([sys.executable, "-c", code, str(repo_root / "bindings" / "python")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ULLME_E_UNSUPPORTED") and "pip install torch" in r.stdout, r.stdout
