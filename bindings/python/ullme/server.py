"""An OpenAI-compatible embedding server over one loaded `ullme.Model` (FastAPI + uvicorn).

    pip install "ullme[server]"
    python -m ullme.server [--model PATH] [--adapter DIR] [--host 127.0.0.1] [--port 8080]

Endpoints:
  POST /v1/embeddings  OpenAI's request and response: `input` a string or a list of strings, `model` (any
                       name: the loaded model answers), `encoding_format` "float" | "base64" (little-endian
                       float32, what the official client asks for by default), `dimensions` (the first N
                       components, renormalised), `user` (ignored); extensions: `input_type` "query"
                       (default) | "document" and `instruction` (ullme's text formats, see Model.encode).
                       `usage` counts the input texts' tokens (special tokens included, as truncated).
  POST /v1/rerank      {"query", "documents": [str | {"text"}], "top_n", "return_documents"}: documents
                       ordered by GRL's generation score (Model.gen_score), Cohere/Jina/TEI-style results.
  GET  /v1/models      the loaded model; GET /health: status, model, dimension and batching counters.

Concurrent requests are batched: requests that arrive while the engine is busy (or within --max-wait-ms
of each other) go into one Model.encode call of up to --max-batch texts. A text's vector does not depend on
its batch, so every response equals `Model.encode` of its own inputs. Limits (--max-request-bytes,
--max-inputs, --max-queue) answer 413/503 with OpenAI's error shape {"error": {"message", "type", "param",
"code"}}; malformed requests get 400. SIGINT/SIGTERM stop accepting connections, finish the requests in
flight (up to --graceful-timeout seconds), then free the model; the process then ends by that signal (as
uvicorn does: exit status -15 / 143 for SIGTERM).
"""
import argparse
import asyncio
import base64
import concurrent.futures
import json
import os
import sys
import time

import numpy as np

from . import __version__
from . import _lib as L
from .model import Model

try:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError(f"ullme.server needs FastAPI and uvicorn ({e}): pip install \"ullme[server]\"") from None

DEFAULTS = dict(max_batch=64, max_wait_ms=2.0, max_inputs=2048, max_request_bytes=8 << 20, max_queue=16384,
                max_documents=1024)


class APIError(Exception):
    """An error answered as OpenAI's JSON error object with an HTTP status."""

    def __init__(self, status, message, param=None, code=None, type_=None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type_ or ("invalid_request_error" if status < 500 else "server_error")

    def response(self):
        return JSONResponse({"error": {"message": self.message, "type": self.type, "param": self.param,
                                       "code": self.code}}, status_code=self.status)


class BodyLimit:
    """ASGI middleware: reads each HTTP request body up to `limit` bytes (Content-Length or streamed) and
    answers 413 beyond it, before the application sees the request."""

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = APIError(413, f"request body larger than {self.limit} bytes (--max-request-bytes)",
                           code="request_too_large")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_big.response()(scope, receive, send)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await too_big.response()(scope, receive, send)
            if not msg.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _Job:
    __slots__ = ("texts", "key", "future")

    def __init__(self, texts, key, future):
        self.texts, self.key, self.future = texts, key, future


class Batcher:
    """Collects concurrent embedding jobs into engine calls of up to `max_batch` texts; one engine call at a
    time, on one worker thread (the engine itself uses every core of the model's threads)."""

    def __init__(self, model, max_batch, max_wait_ms, max_queue):
        self.model, self.max_batch, self.max_wait, self.max_queue = model, max_batch, max_wait_ms / 1000, max_queue
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ullme-engine")
        self.queue = asyncio.Queue()
        self.queued_texts = 0
        self.carry = None
        self.stats = {"requests": 0, "engine_calls": 0, "texts": 0, "largest_batch": 0}
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def embed(self, texts, key):
        """(vectors (n, dim) float32, tokens per text) of `texts` formatted by key = (is_query, instruction)."""
        if self.queued_texts + len(texts) > self.max_queue:
            raise APIError(503, f"server busy: {self.queued_texts} texts queued (--max-queue {self.max_queue}); "
                                "retry later", code="server_busy", type_="server_error")
        fut = asyncio.get_running_loop().create_future()
        self.queued_texts += len(texts)
        self.stats["requests"] += 1
        self.queue.put_nowait(_Job(texts, key, fut))
        return await fut

    async def run_engine(self, fn, *args):
        """Runs another engine call (e.g. reranking) on the same worker thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _next_job(self, timeout=None):
        if self.carry is not None:
            job, self.carry = self.carry, None
            return job
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next_job()
            if first is None:
                return
            jobs, n = [first], len(first.texts)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                try:
                    job = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        job = await self._next_job(left)
                    except asyncio.TimeoutError:
                        break
                if job is None:
                    self.queue.put_nowait(None)  # stop after this batch
                    break
                if n + len(job.texts) > self.max_batch:
                    self.carry = job
                    break
                jobs.append(job)
                n += len(job.texts)
            try:
                results = await loop.run_in_executor(self.executor, self._compute, jobs)
                for job, res in zip(jobs, results):
                    if not job.future.done():
                        job.future.set_result(res)
            except Exception as e:  # the engine's error goes to every job of the batch
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(e)
            finally:
                self.queued_texts -= n
                self.stats["engine_calls"] += 1
                self.stats["texts"] += n
                self.stats["largest_batch"] = max(self.stats["largest_batch"], n)

    def _compute(self, jobs):
        """On the worker thread: one Model.encode per text format in the batch; split back per job."""
        out = [None] * len(jobs)
        for key in dict.fromkeys(j.key for j in jobs):
            idx = [i for i, j in enumerate(jobs) if j.key == key]
            texts = [t for i in idx for t in jobs[i].texts]
            vecs = self.model.encode(texts, is_query=key[0], instruction=key[1], show_progress_bar=False)
            tokens = token_counts(self.model, texts)
            start = 0
            for i in idx:
                k = len(jobs[i].texts)
                out[i] = (vecs[start:start + k], tokens[start:start + k])
                start += k
        return out

    async def close(self):
        """Finishes the queued jobs, then stops the worker."""
        self.queue.put_nowait(None)
        await self.task
        self.executor.shutdown(wait=True)


def token_counts(model, texts):
    """Tokens of each text as the engine embeds it alone (special tokens included, truncated to max_length)."""
    cap = model.max_seq_length
    return [min(len(model.tokenize(t)), cap) for t in texts]


# ---- request parsing ----------------------------------------------------------------------------------
def _field(body, name, type_, default=None, what=None):
    """body[name] checked to be a `type_` (a bool is not an int); absent or null: `default`."""
    v = body.get(name)
    if v is None:
        return default
    if not isinstance(v, type_) or (isinstance(v, bool) and type_ is not bool):
        raise APIError(400, f"'{name}' must be {what}, got {type(v).__name__}", param=name, code="invalid_type")
    return v


async def _json_object(request):
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise APIError(400, f"the request body is not valid JSON ({e})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(body).__name__}",
                       code="invalid_json")
    return body


def _reject_unknown(body, known):
    extra = sorted(set(body) - set(known))
    if extra:
        raise APIError(400, f"unknown field(s) {extra}; this endpoint takes {sorted(known)}", param=extra[0],
                       code="unknown_parameter")


EMBEDDING_FIELDS = ("input", "model", "encoding_format", "dimensions", "user", "input_type", "instruction")


def parse_embedding_request(body, dim, max_inputs):
    """-> (texts, (is_query, instruction), encoding_format, dimensions) or APIError(400/413)."""
    _reject_unknown(body, EMBEDDING_FIELDS)
    if "input" not in body:
        raise APIError(400, "'input' is required: a string or a list of strings", param="input",
                       code="missing_input")
    inp = body["input"]
    if isinstance(inp, str):
        texts = [inp]
    elif isinstance(inp, list):
        if not inp:
            raise APIError(400, "'input' is an empty list", param="input", code="invalid_input")
        if all(isinstance(t, str) for t in inp):
            texts = inp
        elif all(isinstance(t, int) and not isinstance(t, bool) for t in inp) or all(isinstance(t, list) for t in inp):
            raise APIError(400, "token-id input is not supported: send the texts as strings (the server "
                                "tokenizes with the model's tokenizer)", param="input", code="unsupported_input")
        else:
            bad = next(i for i, t in enumerate(inp) if not isinstance(t, str))
            raise APIError(400, f"input[{bad}] must be a string, got {type(inp[bad]).__name__}", param="input",
                           code="invalid_input")
    else:
        raise APIError(400, f"'input' must be a string or a list of strings, got {type(inp).__name__}",
                       param="input", code="invalid_input")
    if len(texts) > max_inputs:
        raise APIError(413, f"{len(texts)} inputs in one request; at most {max_inputs} (--max-inputs)",
                       param="input", code="too_many_inputs")
    _field(body, "model", str, what="a string")
    _field(body, "user", str, what="a string")
    fmt = _field(body, "encoding_format", str, "float", what='"float" or "base64"')
    if fmt not in ("float", "base64"):
        raise APIError(400, f"encoding_format must be \"float\" or \"base64\", got {fmt!r}",
                       param="encoding_format", code="invalid_value")
    dims = _field(body, "dimensions", int, what="an integer")
    if dims is not None and not 1 <= dims <= dim:
        raise APIError(400, f"dimensions must be in [1, {dim}], got {dims}", param="dimensions",
                       code="invalid_value")
    input_type = _field(body, "input_type", str, "query", what='"query" or "document"')
    if input_type not in ("query", "document"):
        raise APIError(400, f"input_type must be \"query\" or \"document\", got {input_type!r}",
                       param="input_type", code="invalid_value")
    instruction = _field(body, "instruction", str, "", what="a string")
    return texts, (input_type == "query", instruction), fmt, dims


def truncate_dimensions(vecs, dims):
    """The first `dims` components of each row, renormalised to unit length (OpenAI's `dimensions`)."""
    if dims is None or dims == vecs.shape[1]:
        return vecs
    v = vecs[:, :dims]
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def encode_vector(vec, fmt):
    if fmt == "base64":
        return base64.b64encode(np.ascontiguousarray(vec, dtype="<f4").tobytes()).decode("ascii")
    return vec.tolist()


def parse_rerank_request(body, max_documents):
    _reject_unknown(body, ("query", "documents", "top_n", "return_documents", "model"))
    query = body.get("query")
    if not isinstance(query, str):
        raise APIError(400, "'query' must be a string", param="query", code="invalid_input")
    docs = body.get("documents")
    if not isinstance(docs, list) or not docs:
        raise APIError(400, "'documents' must be a non-empty list of strings or {\"text\": ...} objects",
                       param="documents", code="invalid_input")
    if len(docs) > max_documents:
        raise APIError(413, f"{len(docs)} documents in one request; at most {max_documents} (--max-documents)",
                       param="documents", code="too_many_inputs")
    texts = []
    for i, d in enumerate(docs):
        t = d.get("text") if isinstance(d, dict) else d
        if not isinstance(t, str):
            raise APIError(400, f"documents[{i}] must be a string or an object with a string \"text\"",
                           param="documents", code="invalid_input")
        texts.append(t)
    top_n = _field(body, "top_n", int, len(texts), what="an integer")
    if top_n < 1:
        raise APIError(400, f"top_n must be >= 1, got {top_n}", param="top_n", code="invalid_value")
    return_documents = _field(body, "return_documents", bool, False, what="a boolean")
    _field(body, "model", str, what="a string")
    return query, texts, top_n, return_documents


def served_name(model):
    base = os.path.basename(os.path.normpath(model.path))
    name = base[:-5] if base.endswith(".gguf") else base
    return name + ("+" + os.path.basename(os.path.normpath(model.adapter)) if model.adapter else "")


# ---- the application -------------------------------------------------------------------------------------
def create_app(model_factory, limits=None):
    """The ASGI application (FastAPI behind the body-size limit). `model_factory()` returns the ullme.Model
    to serve (called at start-up, freed at shutdown); `limits` overrides DEFAULTS' keys."""
    cfg = dict(DEFAULTS, **(limits or {}))
    state = {}

    async def lifespan(app):
        model = model_factory()
        state.update(model=model, name=served_name(model), started=time.time(),
                     batcher=Batcher(model, cfg["max_batch"], cfg["max_wait_ms"], cfg["max_queue"]))
        try:
            yield
        finally:
            await state["batcher"].close()
            model.close()
            st = state["batcher"].stats
            print(f"ullme.server: shut down after {st['requests']} embedding requests "
                  f"({st['engine_calls']} engine calls)", file=sys.stderr)

    app = FastAPI(title="libullme embeddings", version=__version__, lifespan=lifespan)

    @app.exception_handler(APIError)
    async def _api_error(request, e):
        return e.response()

    @app.exception_handler(L.Error)
    async def _engine_error(request, e):
        status = 400 if e.status == L.E_ARG else 500
        return APIError(status, e.message, code=e.status_name).response()

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        return APIError(500, f"internal error: {type(e).__name__}: {e}", code="internal_error").response()

    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        return APIError(e.status_code, str(e.detail), code="http_error").response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e):
        return APIError(400, str(e), code="invalid_request").response()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        model, batcher = state["model"], state["batcher"]
        texts, key, fmt, dims = parse_embedding_request(await _json_object(request), model.dim, cfg["max_inputs"])
        vecs, tokens = await batcher.embed(texts, key)
        vecs = truncate_dimensions(vecs, dims)
        n_tokens = int(sum(tokens))
        return {"object": "list", "model": state["name"],
                "data": [{"object": "embedding", "index": i, "embedding": encode_vector(v, fmt)}
                         for i, v in enumerate(vecs)],
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}

    @app.post("/v1/rerank")
    async def rerank(request: Request):
        model, batcher = state["model"], state["batcher"]
        query, docs, top_n, return_documents = parse_rerank_request(await _json_object(request),
                                                                    cfg["max_documents"])
        scores, tokens = await batcher.run_engine(
            lambda: ([model.gen_score(query, d) for d in docs], token_counts(model, [query] + docs)))
        order = sorted(range(len(docs)), key=lambda i: -scores[i])[:top_n]
        results = []
        for i in order:
            r = {"index": i, "relevance_score": scores[i]}
            if return_documents:
                r["document"] = {"text": docs[i]}
            results.append(r)
        return {"object": "list", "model": state["name"], "results": results,
                "usage": {"prompt_tokens": int(sum(tokens)), "total_tokens": int(sum(tokens))}}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": state["name"], "object": "model",
                                            "created": int(state["started"]), "owned_by": "libullme"}]}

    @app.get("/health")
    async def health():
        model = state["model"]
        return {"status": "ok", "model": state["name"], "path": model.path, "adapter": model.adapter,
                "dimension": model.dim, "max_seq_length": model.max_seq_length,
                "batching": dict(state["batcher"].stats, max_batch=cfg["max_batch"])}

    return BodyLimit(app, cfg["max_request_bytes"])


class ServerProcess:
    """`python -m ullme.server ARGS` in a child process on a free port of 127.0.0.1 (tests, benchmarks,
    notebooks): `.url`, `.proc`; `stop()` sends SIGTERM (graceful shutdown) and returns the exit status.
    Use as a context manager. The child inherits the environment (ULLME_LIB, ULLME_CACHE, ...)."""

    def __init__(self, args=(), timeout=180, env=None, stderr=None):
        import socket
        import subprocess
        import urllib.request
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "ullme.server", "--port", str(port),
                                      "--log-level", "warning", *args], env=env, stderr=stderr)
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"ullme.server exited with status {self.proc.returncode} before serving")
            if time.time() > deadline:
                self.proc.kill()
                raise RuntimeError(f"ullme.server did not answer {self.url}/health within {timeout} s")
            time.sleep(0.2)

    def stop(self, timeout=60):
        """SIGTERM, wait; returns the exit status (-15 after a graceful shutdown: uvicorn re-raises the
        signal once it has finished the requests in flight and freed the model)."""
        import signal
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ullme.server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a .gguf file or Hugging Face directory (default: ullme.Model()'s model)")
    ap.add_argument("--adapter", help="a PEFT LoRA adapter directory applied to every forward pass")
    ap.add_argument("--threads", type=int, help="compute threads (default: every online core)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--max-batch", type=int, default=DEFAULTS["max_batch"],
                    help="texts per engine call when batching concurrent requests (default %(default)s)")
    ap.add_argument("--max-wait-ms", type=float, default=DEFAULTS["max_wait_ms"],
                    help="how long a batch waits for more requests when the engine is idle (default %(default)s)")
    ap.add_argument("--max-inputs", type=int, default=DEFAULTS["max_inputs"],
                    help="texts per request (default %(default)s, as OpenAI)")
    ap.add_argument("--max-documents", type=int, default=DEFAULTS["max_documents"],
                    help="documents per rerank request (default %(default)s)")
    ap.add_argument("--max-request-bytes", type=int, default=DEFAULTS["max_request_bytes"],
                    help="request body size limit (default %(default)s)")
    ap.add_argument("--max-queue", type=int, default=DEFAULTS["max_queue"],
                    help="texts waiting for the engine before requests get 503 (default %(default)s)")
    ap.add_argument("--graceful-timeout", type=int, default=30,
                    help="seconds to finish requests in flight on SIGINT/SIGTERM (default %(default)s)")
    ap.add_argument("--log-level", default="info")
    a = ap.parse_args(argv)
    for name in ("max_batch", "max_inputs", "max_documents", "max_request_bytes", "max_queue"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.max_wait_ms < 0:
        ap.error("--max-wait-ms must be >= 0")
    # Only the options given: with none, the model is exactly ullme.Model()'s default.
    kwargs = {k: v for k, v in (("path", a.model), ("adapter", a.adapter), ("threads", a.threads)) if v is not None}
    try:
        model = Model(**kwargs)  # loaded before serving, so a bad --model is a plain error
    except L.Error as e:
        print(f"ullme.server: {e}", file=sys.stderr)
        return 1
    print(f"ullme.server: {served_name(model)} (dim {model.dim}) on http://{a.host}:{a.port}", file=sys.stderr)
    uvicorn.run(create_app(lambda: model, {k: getattr(a, k) for k in DEFAULTS}), host=a.host, port=a.port,
                log_level=a.log_level, lifespan="on", timeout_graceful_shutdown=a.graceful_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
