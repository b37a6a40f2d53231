"""Scale-out corpus embedding on Ray.

    import ullme.distributed as ud
    summary = ud.embed_corpus("corpus.jsonl", "out/", model="SmolLM2-135M-Instruct.Q4_1.gguf",
                              num_workers=8, threads_per_worker=4, shard_size=10000)
    ids, embs = ud.load_embeddings("out/")

How it works: the driver only indexes the input (JSONL: the byte offset of every shard's first line;
Parquet: row offsets), so it never holds the corpus. Each pending shard becomes one row of a Ray Data
dataset; `map_batches` runs them through a fixed pool of actors (`concurrency=num_workers`), each actor
loading one libullme model in its __init__ (`threads_per_worker` matrix-product threads, the same number
of Ray CPUs reserved). An actor reads its shard's texts itself, embeds them with `Model.encode` and writes
the shard atomically (temporary name + fsync + rename) to output_dir, which must therefore be visible
to every node (a local disk for a one-machine cluster, NFS/a shared mount otherwise).

Output (output_dir):
  manifest.json                  format, model, adapter, formatting, dim, and per shard: file names, rows,
                                 source and offset; "complete": true once every shard is written
  shard-00000.npy                float32 [rows, dim]   (format="npy", the default)
  shard-00000.ids.npy            ids [rows] (int64 if every id is an int, else unicode strings)
  shard-00000.parquet            columns id, embedding (fixed-size list of float32)   (format="parquet")
Resuming: running again with the same arguments skips every shard whose files are present and valid
(right shapes, same ids) and computes only the rest. Different model/formatting/sharding arguments on
an existing output_dir are refused unless overwrite=True (which recomputes every shard).

libullme is batch-invariant (a text gives the same bits alone or in any batch), so the result is
bit-identical to `Model(model).encode(texts, is_query=..., instruction=...)` in one process.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["embed_corpus", "load_embeddings", "index_corpus"]

MANIFEST = "manifest.json"
FORMAT = "ullme-embeddings-1"


# ---- input indexing (driver) and reading (actors) ------------------------------------------------

def _input_files(input):
    paths = [input] if isinstance(input, (str, os.PathLike)) else list(input)
    files = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix in (".jsonl", ".json", ".parquet"))
        else:
            files.append(p)
    if not files:
        raise ValueError(f"no input files in {input!r}")
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f)
    return [str(f.resolve()) for f in files]


def _is_parquet(path):
    return path.endswith(".parquet")


def index_corpus(files, shard_size):
    """Shard descriptors: dicts (index, source, start, rows) with start a byte offset (JSONL, the shard's
    first non-blank line) or a row offset (Parquet). Shards never span two files."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    shards = []
    for f in files:
        if _is_parquet(f):
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise ImportError(f"{f}: reading Parquet needs pyarrow (pip install pyarrow)") from None
            n = pq.ParquetFile(f).metadata.num_rows
            for s in range(0, n, shard_size):
                shards.append({"source": f, "start": s, "rows": min(shard_size, n - s)})
            continue
        with open(f, "rb") as fh:
            pos, count, start = 0, 0, None
            for line in fh:
                if line.strip():
                    if count == 0:
                        start = pos
                    count += 1
                    if count == shard_size:
                        shards.append({"source": f, "start": start, "rows": count})
                        count = 0
                pos += len(line)
            if count:
                shards.append({"source": f, "start": start, "rows": count})
    for i, s in enumerate(shards):
        s["index"] = i
    return shards


def _read_shard(desc, text_field, id_field, global_row):
    """(texts, ids) of one shard. A record without id_field gets its global row number as id."""
    texts, ids = [], []
    if _is_parquet(desc["source"]):
        import pyarrow.parquet as pq
        pf = pq.ParquetFile(desc["source"])
        cols = [text_field] + ([id_field] if id_field in pf.schema_arrow.names else [])
        t = pq.read_table(desc["source"], columns=cols).slice(desc["start"], desc["rows"])
        texts = t.column(text_field).to_pylist()
        ids = t.column(id_field).to_pylist() if id_field in cols else [None] * len(texts)
    else:
        with open(desc["source"], "rb") as fh:
            fh.seek(desc["start"])
            while len(texts) < desc["rows"]:
                line = fh.readline()
                if not line:
                    raise ValueError(f"{desc['source']}: ended inside shard {desc['index']} (file changed?)")
                if not line.strip():
                    continue
                rec = json.loads(line)
                if text_field not in rec:
                    raise KeyError(f"{desc['source']}: a record has no {text_field!r} field")
                texts.append(rec[text_field])
                ids.append(rec.get(id_field))
    ids = [global_row + i if v is None else v for i, v in enumerate(ids)]
    return [t if isinstance(t, str) else str(t) for t in texts], ids


def _ids_array(ids):
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ids):
        return np.asarray(ids, dtype=np.int64)
    return np.asarray([str(v) for v in ids], dtype=np.str_)


# ---- shard files ---------------------------------------------------------------------------------

def _shard_files(index, fmt):
    base = f"shard-{index:05d}"
    return [base + ".parquet"] if fmt == "parquet" else [base + ".npy", base + ".ids.npy"]


def _atomic_write(path, write):
    """write(fileobj) into path.tmp-<pid>, fsync, rename over path: readers see all or nothing."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_shard(out_dir, index, fmt, ids, embs):
    files = _shard_files(index, fmt)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        dim = embs.shape[1]
        col = pa.FixedSizeListArray.from_arrays(pa.array(embs.reshape(-1), type=pa.float32()), dim)
        table = pa.table({"id": pa.array(ids.tolist()), "embedding": col})
        _atomic_write(os.path.join(out_dir, files[0]), lambda fh: pq.write_table(table, fh))
    else:
        # ids first, embeddings last: the embeddings file is the shard's commit record.
        _atomic_write(os.path.join(out_dir, files[1]), lambda fh: np.save(fh, ids, allow_pickle=False))
        _atomic_write(os.path.join(out_dir, files[0]), lambda fh: np.save(fh, embs, allow_pickle=False))
    return files


def _read_shard_output(out_dir, index, fmt):
    files = _shard_files(index, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(os.path.join(out_dir, files[0]))
        emb = t.column("embedding").combine_chunks()
        dim = emb.type.list_size
        embs = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
        return _ids_array(t.column("id").to_pylist()), embs
    embs = np.load(os.path.join(out_dir, files[0]), mmap_mode="r", allow_pickle=False)
    ids = np.load(os.path.join(out_dir, files[1]), allow_pickle=False)
    return ids, embs


def _shard_complete(out_dir, shard, fmt, dim):
    """A shard counts as done when its files exist and hold rows x dim float32 and as many ids."""
    try:
        ids, embs = _read_shard_output(out_dir, shard["index"], fmt)
    except Exception:
        return False
    return (embs.dtype == np.float32 and embs.ndim == 2 and embs.shape == (shard["rows"], dim)
            and ids.shape == (shard["rows"],))


# ---- the Ray actor -------------------------------------------------------------------------------

class _ShardEmbedder:
    """One libullme model per actor, loaded once; each call embeds and writes whole shards."""

    def __init__(self, model_options, threads, batch_size, encode_options, text_field, id_field, out_dir, fmt,
                 lib_path):
        if lib_path and not os.environ.get("ULLME_LIB"):
            os.environ["ULLME_LIB"] = lib_path
        import ullme
        self.model = ullme.Model(**model_options, threads=threads, batch_size=batch_size)
        self.kw = dict(**encode_options, batch_size=batch_size, show_progress_bar=False)
        self.text_field, self.id_field, self.out_dir, self.fmt = text_field, id_field, out_dir, fmt

    def __call__(self, batch):
        out = {"index": [], "rows": [], "seconds": [], "tokens": [], "pid": []}
        for k in range(len(batch["index"])):
            desc = {f: batch[f][k].item() if hasattr(batch[f][k], "item") else batch[f][k]
                    for f in ("index", "source", "start", "rows", "global_row")}
            t0 = time.perf_counter()
            texts, ids = _read_shard(desc, self.text_field, self.id_field, desc["global_row"])
            embs = self.model.encode(texts, **self.kw)
            _write_shard(self.out_dir, desc["index"], self.fmt, _ids_array(ids), embs)
            out["index"].append(desc["index"])
            out["rows"].append(len(texts))
            out["seconds"].append(time.perf_counter() - t0)
            out["tokens"].append(self.model.last_stats["n_tokens"])
            out["pid"].append(os.getpid())
        return {k: np.asarray(v) for k, v in out.items()}


# ---- driver --------------------------------------------------------------------------------------

def _actor_pool(rd, n):
    """A fixed pool of n actors (ActorPoolStrategy; older Ray: the same through concurrency=n)."""
    try:
        return rd.ActorPoolStrategy(size=n)
    except TypeError:  # Ray < 2.10 spelled it min_size/max_size
        return rd.ActorPoolStrategy(min_size=n, max_size=n)


def _package_parent():
    return str(Path(__file__).resolve().parent.parent)


def _ensure_ray(address, lib_path):
    import ray
    if ray.is_initialized():
        return ray
    env = {"PYTHONPATH": os.pathsep.join(p for p in (_package_parent(), os.environ.get("PYTHONPATH")) if p)}
    if lib_path:
        env["ULLME_LIB"] = lib_path
    ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    return ray


def embed_corpus(input, output_dir, model=None, adapter=None, batch_size=32, num_workers=1,
                 threads_per_worker=1, text_field="text", id_field="id", shard_size=10000, format="npy",
                 is_query=False, instruction="", pooling=None, attention=None, max_length=None, preset=None,
                 prompt_name=None, prompt=None, truncate_dim=None, ray_address=None, overwrite=False,
                 progress=False):
    """Embed a JSONL/Parquet corpus with a pool of Ray actors; write .npy (or Parquet) shards + manifest.

    input: a path, a directory (its *.jsonl / *.parquet files, sorted) or a list of paths. A record is a
      JSON object (or Parquet row) with `text_field` and optionally `id_field` (absent: its global row).
    model, adapter, pooling, attention, max_length, preset: as ullme.Model (None = the default model, base +
      the shipped adapter, which must already be in the cache on every node; pooling, attention and
      max_length None = what the model's metadata or preset says). batch_size: texts per libullme call.
    prompt_name, prompt, truncate_dim: as Model.encode (a sentence-transformers model's named prompts).
    num_workers: actors (one model each); threads_per_worker: libullme threads and Ray CPUs per actor.
    shard_size: texts per output shard (the unit of work and of resumption). format: "npy" or "parquet".
    is_query / instruction: the text format, as Model.encode (default: documents, no instruction).
    ray_address: passed to ray.init when Ray is not initialised yet (None = a local cluster, "auto" =
      the running cluster). Returns a summary dict: shards computed / skipped, rows_computed, seconds (wall,
      with actor start-up), texts_per_s, busy_seconds (summed over shards: reading, embedding, writing).
    """
    from . import _lib
    if format not in ("npy", "parquet"):
        raise ValueError(f"format must be 'npy' or 'parquet', got {format!r}")
    if num_workers < 1 or threads_per_worker < 1 or batch_size < 1:
        raise ValueError("num_workers, threads_per_worker and batch_size must be >= 1")
    resolve = lambda p: str(Path(p).resolve())  # noqa: E731  (actors may run in another directory)
    if isinstance(adapter, (list, tuple)):
        adapter = [resolve(a) for a in adapter]
    elif adapter is not None and adapter is not False:
        adapter = resolve(adapter)
    model_options = {"path": None if model is None else resolve(model), "adapter": adapter, "pooling": pooling,
                     "attention": attention, "max_length": max_length, "preset": preset}
    encode_options = {"is_query": bool(is_query), "instruction": instruction, "prompt_name": prompt_name,
                      "prompt": prompt, "truncate_dim": truncate_dim}
    out_dir = os.path.abspath(output_dir)
    os.makedirs(out_dir, exist_ok=True)
    files = _input_files(input)
    shards = index_corpus(files, shard_size)
    row = 0
    for s in shards:
        s["global_row"] = row
        row += s["rows"]
    try:
        lib_path = _lib.library_path()
    except Exception:
        lib_path = os.environ.get("ULLME_LIB")

    # What the options resolve to (model file, applied adapter, the embedder profile, the output dimension),
    # from a short-lived load on the driver: the manifest records it, so a rerun that would embed differently
    # is refused instead of mixing shards.
    resolved = _probe(model_options, encode_options)
    settings = {"model": resolved["model"], "adapter": resolved["adapter"], "options": model_options,
                **encode_options, "embedder": resolved["embedder"], "text_field": text_field, "id_field": id_field,
                "shard_size": int(shard_size), "format": format, "inputs": files,
                "input_bytes": [os.path.getsize(f) for f in files]}  # a changed input is not "resumed"
    mpath = os.path.join(out_dir, MANIFEST)
    old = None
    if os.path.exists(mpath):
        with open(mpath) as fh:
            old = json.load(fh)
        if old.get("settings") != settings and not overwrite:
            raise ValueError(f"{out_dir} holds embeddings made with other settings ({mpath}); "
                             f"use another output_dir or overwrite=True")
    dim = resolved["dim"]

    def manifest(complete):
        return {"format": FORMAT, "settings": settings, "dim": dim, "n_texts": row, "complete": complete,
                "shards": [{"index": s["index"], "files": _shard_files(s["index"], format), "rows": s["rows"],
                            "source": s["source"], "start": s["start"], "global_row": s["global_row"]}
                           for s in shards]}

    def write_manifest(complete):
        _atomic_write(mpath, lambda fh: fh.write(json.dumps(manifest(complete), indent=1).encode()))

    if overwrite:
        pending = list(shards)
    else:
        pending = [s for s in shards if not _shard_complete(out_dir, s, format, dim)]
    write_manifest(complete=False)
    t0 = time.perf_counter()
    results = []
    if pending:
        ray = _ensure_ray(ray_address, lib_path)
        import ray.data
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = bool(progress)
        items = [{k: s[k] for k in ("index", "source", "start", "rows", "global_row")} for s in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            _ShardEmbedder, batch_size=1, num_cpus=threads_per_worker,
            compute=_actor_pool(ray.data, min(num_workers, len(items))),
            fn_constructor_kwargs=dict(model_options=model_options, threads=threads_per_worker,
                                       batch_size=batch_size, encode_options=encode_options,
                                       text_field=text_field, id_field=id_field, out_dir=out_dir, fmt=format,
                                       lib_path=lib_path))
        results = ds.take_all()
    seconds = time.perf_counter() - t0
    done = {int(r["index"]) for r in results}
    missing = [s["index"] for s in pending if s["index"] not in done]
    bad = [s["index"] for s in pending if not _shard_complete(out_dir, s, format, dim)]
    if missing or bad:
        raise RuntimeError(f"shards not written: {sorted(set(missing + bad))}")
    write_manifest(complete=True)
    rows = sum(int(r["rows"]) for r in results)
    return {"output_dir": out_dir, "shards": len(shards), "computed": sorted(done),
            "skipped": [s["index"] for s in shards if s["index"] not in done], "rows_computed": rows,
            "n_texts": row, "dim": dim, "seconds": seconds, "texts_per_s": rows / seconds if seconds > 0 else 0.0,
            "busy_seconds": float(sum(float(r["seconds"]) for r in results)),
            "tokens": int(sum(int(r["tokens"]) for r in results)), "workers": sorted({int(r["pid"]) for r in results})}


def _probe(model_options, encode_options):
    """The model file, applied adapter, embedder profile and output dimension the options give (mmap, one
    one-word encode for the dimension after truncate_dim)."""
    import ullme
    with ullme.Model(**model_options, threads=1) as m:
        dim = m.encode(["probe"], **encode_options, show_progress_bar=False).shape[1]
        return {"model": m.path, "adapter": m.adapter, "embedder": m.embedder, "dim": int(dim)}


def load_embeddings(output_dir, mmap=False):
    """(ids, embeddings) of a complete output_dir, in corpus order (shards concatenated)."""
    with open(os.path.join(output_dir, MANIFEST)) as fh:
        man = json.load(fh)
    if not man.get("complete"):
        raise ValueError(f"{output_dir}: the run is not complete (run embed_corpus again to finish it)")
    fmt = man["settings"]["format"]
    parts = [_read_shard_output(output_dir, s["index"], fmt) for s in man["shards"]]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, man["dim"]), dtype=np.float32)
    ids = np.concatenate([p[0] for p in parts])
    embs = np.concatenate([np.asarray(p[1]) for p in parts])
    return ids, embs


if __name__ == "__main__":  # python -m ullme.distributed INPUT OUTPUT_DIR [--model M] [--workers N] ...
    import argparse
    ap = argparse.ArgumentParser(description=embed_corpus.__doc__.split("\n")[0])
    ap.add_argument("input", nargs="+")
    ap.add_argument("output_dir")
    ap.add_argument("--model")
    ap.add_argument("--adapter")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads-per-worker", type=int, default=1)
    ap.add_argument("--shard-size", type=int, default=10000)
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--format", default="npy", choices=["npy", "parquet"])
    ap.add_argument("--no-adapter", action="store_true", help="the default model's base alone (adapter=False)")
    ap.add_argument("--pooling", choices=["mean", "weightedmean", "cls", "lasttoken"], help="default: the model's")
    ap.add_argument("--attention", choices=["bidirectional", "causal"], help="default: the model's")
    ap.add_argument("--max-length", type=int, help="default: the model's (else 512)")
    ap.add_argument("--preset", help="a named embedder format (README 'Supported embedders')")
    ap.add_argument("--prompt-name", help="a named prompt of a sentence-transformers model")
    ap.add_argument("--prompt", help="a prompt string put before every text")
    ap.add_argument("--truncate-dim", type=int, help="keep the first N dimensions (Matryoshka), re-normalised")
    ap.add_argument("--instruction", default="")
    ap.add_argument("--query", action="store_true", help="query format instead of the document format")
    ap.add_argument("--address", help="Ray address (default: start a local cluster; 'auto': the running one)")
    a = ap.parse_args()
    if a.no_adapter and a.adapter:
        ap.error("--no-adapter and --adapter exclude each other")
    s = embed_corpus(a.input, a.output_dir, model=a.model, adapter=False if a.no_adapter else a.adapter,
                     batch_size=a.batch_size, num_workers=a.workers, threads_per_worker=a.threads_per_worker,
                     text_field=a.text_field, id_field=a.id_field, shard_size=a.shard_size, format=a.format,
                     is_query=a.query, instruction=a.instruction, pooling=a.pooling, attention=a.attention,
                     max_length=a.max_length, preset=a.preset, prompt_name=a.prompt_name, prompt=a.prompt,
                     truncate_dim=a.truncate_dim, ray_address=a.address, progress=True)
    print(json.dumps({k: v for k, v in s.items() if k != "workers"}), file=sys.stdout)
