"""`python -m ullme.server` in a child process on 127.0.0.1, driven by the official `openai` client and by
httpx: vectors equal `ullme.Model().encode`, concurrent clients are batched, malformed and oversized
requests get 4xx JSON errors and the server stays up, SIGTERM finishes the requests in flight.

Needs fastapi, uvicorn, openai, httpx (CI installs them; missing = failure).
"""
import base64
import signal
import threading
import time

import httpx  # noqa: E402  (missing = failure)
import numpy as np
import openai  # noqa: E402
import pytest

import ullme
from ullme.server import ServerProcess

TEXTS = ["The lighthouse keeper lit the lamp.", "Knead the dough and bake it.", "", "字 and ünïcödé",
         "word " * 700]   # the last one is truncated to max_length tokens


@pytest.fixture(scope="module")
def default_model(lib):
    m = ullme.Model()   # what the server serves with no arguments
    yield m
    m.close()


GRACEFUL = -signal.SIGTERM   # uvicorn ends by the signal it handled, after its graceful shutdown


@pytest.fixture(scope="module")
def server(lib, tmp_path_factory):
    # No --model: the server must serve exactly ullme.Model()'s default. Small limits to test them.
    log = tmp_path_factory.mktemp("server") / "stderr.txt"
    with open(log, "w") as err, ServerProcess(["--max-inputs", "64", "--max-request-bytes", "200000",
                                               "--max-batch", "32"], stderr=err) as s:
        yield s
        assert s.proc.poll() is None, "the server died during the tests"
    assert s.proc.returncode == GRACEFUL, f"exit status {s.proc.returncode}"
    assert "ullme.server: shut down after" in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0)


def as_array(resp):
    return np.array([d.embedding for d in sorted(resp.data, key=lambda d: d.index)], dtype=np.float32)


def test_openai_client_equals_model_encode(client, default_model):
    want = default_model.encode(TEXTS)
    # The official client asks for base64 by default and decodes it itself.
    r = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    np.testing.assert_array_equal(as_array(r), want)
    r = client.embeddings.create(model="anything-at-all", input=TEXTS, encoding_format="float")
    np.testing.assert_array_equal(as_array(r), want)
    assert r.object == "list" and [d.index for d in r.data] == list(range(len(TEXTS)))
    tokens = sum(min(len(default_model.tokenize(t)), default_model.max_seq_length) for t in TEXTS)
    assert r.usage.prompt_tokens == r.usage.total_tokens == tokens
    one = client.embeddings.create(model="m", input="The lighthouse keeper lit the lamp.", encoding_format="float")
    np.testing.assert_array_equal(as_array(one)[0], want[0])


def test_dimensions_truncate_and_renormalise(client, default_model):
    r = client.embeddings.create(model="m", input=TEXTS[:2], dimensions=64)
    got = as_array(r)
    full = default_model.encode(TEXTS[:2])[:, :64]
    assert got.shape == (2, 64)
    np.testing.assert_allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)


def test_raw_base64_and_extensions(server, default_model):
    ins = "Given a question, retrieve passages that answer it"
    r = httpx.post(server.url + "/v1/embeddings", json={"input": ["a passage"], "encoding_format": "base64",
                                                        "input_type": "document", "instruction": ins}, timeout=60)
    assert r.status_code == 200, r.text
    got = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(got, default_model.encode("a passage", is_query=False, instruction=ins))


def test_models_and_health(client, server, default_model):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["SmolLM2-135M-Instruct.Q4_1+default"], ids  # the base GGUF + the shipped adapter
    h = httpx.get(server.url + "/health").json()
    assert h["status"] == "ok" and h["dimension"] == default_model.dim and h["path"] == default_model.path


def test_rerank_uses_generation_score(server, default_model):
    q = "what do lighthouses do?"
    docs = ["Sourdough bread needs flour, water and salt.", "A lighthouse is a tower whose lamp guides ships.",
            {"text": "Tax returns are due in April."}]
    r = httpx.post(server.url + "/v1/rerank", json={"query": q, "documents": docs, "top_n": 2,
                                                    "return_documents": True}, timeout=120)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    texts = [d if isinstance(d, str) else d["text"] for d in docs]
    scores = [default_model.gen_score(q, t) for t in texts]
    want = sorted(range(3), key=lambda i: -scores[i])[:2]
    assert [x["index"] for x in res] == want and want[0] == 1
    assert [x["relevance_score"] for x in res] == pytest.approx([scores[i] for i in want], abs=1e-6)
    assert res[0]["document"]["text"] == texts[1]


def test_eight_concurrent_clients_are_batched(server, default_model):
    before = httpx.get(server.url + "/health").json()["batching"]
    texts = [f"client {c} request {k}: the lamp of lighthouse number {c * 10 + k}" for c in range(8) for k in range(6)]
    want = dict(zip(texts, default_model.encode(texts)))
    errors, done = [], []

    def client_thread(c):
        cl = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        try:
            for k in range(6):
                t = texts[c * 6 + k]
                got = as_array(cl.embeddings.create(model=f"client-{c}", input=[t]))
                if not np.array_equal(got[0], want[t]):
                    errors.append(f"{t}: differs from Model.encode")
                done.append(t)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client_thread, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:5]
    assert len(done) == 48
    after = httpx.get(server.url + "/health").json()["batching"]
    requests = after["requests"] - before["requests"]
    calls = after["engine_calls"] - before["engine_calls"]
    print(f"48 requests from 8 clients: {calls} engine calls, largest batch {after['largest_batch']}")
    assert requests == 48 and calls < requests and after["largest_batch"] > 1


BAD = [
    (b"not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b"{}", 400, "missing_input"),
    (b'{"input": 5}', 400, "invalid_input"),
    (b'{"input": []}', 400, "invalid_input"),
    (b'{"input": ["ok", 3]}', 400, "invalid_input"),
    (b'{"input": {"text": "a"}}', 400, "invalid_input"),
    (b'{"input": [1, 2, 3]}', 400, "unsupported_input"),
    (b'{"input": [[1, 2], [3]]}', 400, "unsupported_input"),
    (b'{"input": "a", "encoding_format": "int8"}', 400, "invalid_value"),
    (b'{"input": "a", "dimensions": 0}', 400, "invalid_value"),
    (b'{"input": "a", "dimensions": 100000}', 400, "invalid_value"),
    (b'{"input": "a", "dimensions": "64"}', 400, "invalid_type"),
    (b'{"input": "a", "dimensions": true}', 400, "invalid_type"),
    (b'{"input": "a", "model": 7}', 400, "invalid_type"),
    (b'{"input": "a", "temperature": 1}', 400, "unknown_parameter"),
    (b'{"input": "a", "input_type": "passage"}', 400, "invalid_value"),
    (b'{"input": ["a"] }' + b" " * 300000, 413, "request_too_large"),
    (('{"input": [' + ",".join(['"x"'] * 65) + "]}").encode(), 413, "too_many_inputs"),
]


@pytest.mark.parametrize("body, status, code", BAD, ids=[f"{c}-{i}" for i, (_, _, c) in enumerate(BAD)])
def test_malformed_and_oversized_requests(server, body, status, code):
    r = httpx.post(server.url + "/v1/embeddings", content=body, headers={"content-type": "application/json"},
                   timeout=60)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["type"] == "invalid_request_error", err
    assert httpx.get(server.url + "/health").status_code == 200


def test_bad_requests_through_the_client_and_other_routes(client, server):
    with pytest.raises(openai.BadRequestError) as ei:
        client.embeddings.create(model="m", input="a", dimensions=0)
    assert "dimensions" in ei.value.message
    with pytest.raises(openai.APIStatusError) as ei:
        client.embeddings.create(model="m", input=["x"] * 65)
    assert ei.value.status_code == 413
    r = httpx.post(server.url + "/v1/embeddings", content=b"{" * 10, headers={"transfer-encoding": "chunked"})
    assert r.status_code == 400
    for method, path, status in (("GET", "/v1/embeddings", 405), ("GET", "/nope", 404)):
        r = httpx.request(method, server.url + path)
        assert r.status_code == status and "error" in r.json()
    for body in ({"query": 1, "documents": ["a"]}, {"query": "q", "documents": []}, {"query": "q", "documents": [3]},
                 {"query": "q", "documents": ["a"], "top_n": 0}):
        r = httpx.post(server.url + "/v1/rerank", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"], r.text
    # still serving
    assert len(client.embeddings.create(model="m", input="still up").data[0].embedding) == 576


def test_sigterm_finishes_requests_in_flight(lib, tmp_path):
    """A request in flight when SIGTERM arrives gets its full answer; the model is freed, the process ends."""
    with open(tmp_path / "stderr.txt", "w") as err, \
            ServerProcess(["--max-batch", "8", "--graceful-timeout", "600"], stderr=err) as s:
        texts = [f"passage {i} about the sea and its lighthouses " * 8 for i in range(24)]
        result = {}

        def call():
            result["r"] = httpx.post(s.url + "/v1/embeddings", json={"input": texts, "encoding_format": "float"},
                                     timeout=300)

        t = threading.Thread(target=call)
        t.start()
        # Wait until the server holds the request (24 texts x ~80 tokens: seconds of work on 2 cores).
        while httpx.get(s.url + "/health").json()["batching"]["requests"] < 1:
            time.sleep(0.05)
        assert s.proc.poll() is None and t.is_alive()
        t0 = time.time()
        status = s.stop(timeout=600)
        t.join(10)
        r = result["r"]
        assert r.status_code == 200 and len(r.json()["data"]) == 24, r.text[:300]
        assert status == GRACEFUL, f"exit status {status}"
        assert "ullme.server: shut down after 1 embedding requests" in (tmp_path / "stderr.txt").read_text()
        print(f"in-flight request answered; exit after SIGTERM in {time.time() - t0:.1f} s")
        with pytest.raises(httpx.ConnectError):
            httpx.get(s.url + "/health", timeout=5)


def test_bad_model_is_a_clear_error(lib, tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "ullme.server", "--model", str(tmp_path / "nope.gguf")],
                       capture_output=True, text=True, timeout=60,
                       env=dict(__import__("os").environ, PYTHONPATH=str(ullme.__path__[0].rsplit("/", 1)[0])))
    assert r.returncode == 1 and "nope.gguf" in r.stderr and "Traceback" not in r.stderr, r.stderr
