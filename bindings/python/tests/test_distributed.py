"""ullme.distributed.embed_corpus on a local Ray cluster (2 CPUs, 2 actors) with the real SmolLM2 model:
the shards equal single-process Model.encode bit for bit, and a rerun recomputes only a deleted shard."""
import json
import os

import numpy as np
import pytest

import ullme

import ray  # noqa: E402  (a missing ray is a failure, never a skip)
import ullme.distributed as ud  # noqa: E402

WORDS = ("lighthouse harbour ship storm keeper lamp rock island wave night signal coast fog bell tide "
         "captain rope anchor gull beacon").split()


def _corpus(n=64):
    rng = np.random.default_rng(7)
    docs = []
    for i in range(n):
        k = int(rng.integers(3, 40))  # short and long texts, so shards mix lengths
        docs.append({"id": f"doc-{i}", "text": " ".join(rng.choice(WORDS, size=k)) + f" ({i})"})
    return docs


@pytest.fixture(scope="module")
def ray_cluster(lib):
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ud._package_parent()), os.environ.get("PYTHONPATH")) if p),
           "ULLME_LIB": ullme.library_path()}
    ray.init(num_cpus=2, runtime_env={"env_vars": env}, log_to_driver=False, include_dashboard=False)
    yield
    ray.shutdown()


def test_embed_corpus_matches_single_process_and_resumes(ray_cluster, model, model_path, tmp_path):
    docs = _corpus()
    src = tmp_path / "corpus.jsonl"
    with open(src, "w") as fh:
        for i, d in enumerate(docs):
            fh.write(json.dumps(d) + "\n")
            if i == 20:
                fh.write("\n")  # blank lines are skipped
    out = tmp_path / "emb"
    s = ud.embed_corpus(str(src), str(out), model=model_path, batch_size=8, num_workers=2, threads_per_worker=1,
                        shard_size=16)
    assert s["shards"] == 4 and s["computed"] == [0, 1, 2, 3] and s["skipped"] == [] and s["n_texts"] == 64
    assert len(s["workers"]) == 2, s  # both actors did work
    man = json.loads((out / "manifest.json").read_text())
    assert man["complete"] and man["dim"] == model.dim and [sh["rows"] for sh in man["shards"]] == [16] * 4

    expected = model.encode([d["text"] for d in docs], is_query=False, batch_size=5)
    ids, embs = ud.load_embeddings(str(out))
    assert ids.tolist() == [d["id"] for d in docs]
    assert embs.dtype == np.float32 and embs.shape == expected.shape
    assert np.array_equal(embs, expected), float(np.abs(embs - expected).max())

    # Resume: delete shard 2, rerun: only shard 2 is computed, the others are not rewritten.
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npy")}
    (out / "shard-00002.npy").unlink()
    s2 = ud.embed_corpus(str(src), str(out), model=model_path, batch_size=8, num_workers=2, threads_per_worker=1,
                         shard_size=16)
    assert s2["computed"] == [2] and s2["skipped"] == [0, 1, 3] and s2["rows_computed"] == 16
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npy")}
    for name, t in before.items():
        if not name.startswith("shard-00002"):
            assert after[name] == t, name
    assert after["shard-00002.npy"] != before["shard-00002.npy"]
    _, embs2 = ud.load_embeddings(str(out))
    assert np.array_equal(embs2, expected)
    assert not list(out.glob("*.tmp-*"))  # atomic writes leave no temporaries

    # A complete output_dir: nothing to do (Ray is not even needed).
    s3 = ud.embed_corpus(str(src), str(out), model=model_path, batch_size=8, num_workers=2, shard_size=16)
    assert s3["computed"] == [] and s3["skipped"] == [0, 1, 2, 3]

    # Other settings on the same output_dir are refused.
    with pytest.raises(ValueError, match="other settings"):
        ud.embed_corpus(str(src), str(out), model=model_path, shard_size=8)


def test_embed_corpus_parquet_in_and_out(ray_cluster, model, model_path, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    docs = _corpus(24)
    src = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"body": [d["text"] for d in docs]}), src)  # no id column: ids are row numbers
    out = tmp_path / "emb"
    s = ud.embed_corpus(str(src), str(out), model=model_path, num_workers=2, shard_size=10, text_field="body",
                        format="parquet", instruction="Represent the passage")
    assert s["shards"] == 3 and s["computed"] == [0, 1, 2]
    ids, embs = ud.load_embeddings(str(out))
    assert ids.tolist() == list(range(24))
    expected = model.encode([d["text"] for d in docs], is_query=False, instruction="Represent the passage")
    assert np.array_equal(embs, expected)


def test_embed_corpus_defaults_follow_the_model(ray_cluster, lib, repo_root, tmp_path):
    """model=None is the default model with its shipped adapter (as ullme.Model()); a sentence-transformers
    directory keeps its own pooling, max length and named prompts (nothing forced to mean/512), and
    truncate_dim gives the shorter vectors Model.encode gives."""
    docs = _corpus(12)
    src = tmp_path / "corpus.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    texts = [d["text"] for d in docs]

    s = ud.embed_corpus(str(src), str(tmp_path / "default"), num_workers=1, shard_size=6)
    assert s["computed"] == [0, 1]
    man = json.loads((tmp_path / "default" / "manifest.json").read_text())
    with ullme.Model() as m:
        assert m.adapter and man["settings"]["adapter"] == m.adapter
        assert np.array_equal(ud.load_embeddings(str(tmp_path / "default"))[1], m.encode(texts, is_query=False))

    st = repo_root / "Tests" / "fixtures" / "generated" / "embedders" / "st-qwen3"
    out = tmp_path / "st"
    ud.embed_corpus(str(src), str(out), model=str(st), num_workers=1, shard_size=6, prompt_name="query",
                    truncate_dim=16)
    man = json.loads((out / "manifest.json").read_text())
    assert man["dim"] == 16 and man["settings"]["embedder"]["pooling"] == "lasttoken"
    with ullme.Model(str(st)) as m:
        want = m.encode(texts, prompt_name="query", truncate_dim=16)
    got = ud.load_embeddings(str(out))[1]
    assert got.shape == (12, 16) and np.array_equal(got, want)
