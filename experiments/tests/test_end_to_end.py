"""The whole harness on tiny tasks with the real libullme, the default SmolLM2 GGUF, MiniLM and BM25:
the table has every row, every CI contains its mean, a two-seed system gets a two-level CI, a re-run is
served from the cache, and the base row equals `ullme eval` on the same data."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import eval_suite
from conftest import REPO, write_retrieval_task

MAX_LENGTH = 64
VERDICTS = {"no significant difference"}


def random_adapter(directory, seed, hidden=576, layers=30, r=2):
    """A PEFT LoRA adapter on SmolLM2-135M's q_proj with random weights: a stand-in for a trained seed."""
    rng = np.random.default_rng(seed)
    d = Path(directory)
    d.mkdir(parents=True)
    tensors = {}
    for i in range(layers):
        p = f"base_model.model.layers.{i}.self_attn.q_proj"
        tensors[f"{p}.lora_A.weight"] = rng.normal(0, 0.05, (r, hidden)).astype(np.float32)
        tensors[f"{p}.lora_B.weight"] = rng.normal(0, 0.05, (hidden, r)).astype(np.float32)
    save_file(tensors, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "FEATURE_EXTRACTION", "r": r, "lora_alpha": 2 * r, "lora_dropout": 0.0,
        "target_modules": ["q_proj"], "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
        "use_dora": False}))
    return str(d)


def graded_task(directory):
    """A second retrieval task with graded judgements and its own instruction."""
    corpus = [("lh", "Lighthouse", "A tower with a bright lamp that guides ships at night."),
              ("fa", "Lantern", "A portable lamp in a case, carried by hand."),
              ("br", "Bread", "Baked dough of flour and water."),
              ("ca", "Cake", "A sweet baked food made of flour, sugar and eggs."),
              ("ri", "River", "A large natural stream of water flowing to the sea."),
              ("la", "Lake", "A large body of water surrounded by land."),
              ("vi", "Violin", "A string instrument played with a bow."),
              ("gu", "Guitar", "A string instrument plucked with the fingers.")]
    queries = [("q-light", "lamp that guides ships"), ("q-bake", "baked food from flour"),
               ("q-water", "body of water"), ("q-music", "string instrument")]
    qrels = [("q-light", "lh", 2), ("q-light", "fa", 1), ("q-bake", "ca", 2), ("q-bake", "br", 2),
             ("q-water", "la", 2), ("q-water", "ri", 1), ("q-music", "vi", 1), ("q-music", "gu", 1)]
    return write_retrieval_task(directory, queries, corpus, qrels,
                                {"name": "graded", "instruction": "Given a description, retrieve the matching entry"})


def run_suite(tmp, tasks, spec, *extra):
    out = tmp / "out"
    eval_suite.main(["--systems", str(spec), "--tasks", *tasks, "--out", str(out), "--resamples", "300", *extra])
    return json.loads((out / "results.json").read_text()), (out / "table.md").read_text()


@pytest.fixture(scope="module")
def suite(tmp_path_factory, model_path, minilm_path, manpages_tiny, lee):
    tmp = tmp_path_factory.mktemp("suite")
    adapters = [random_adapter(tmp / f"adapter-{s}", s) for s in (1, 2)]
    spec = tmp / "systems.json"
    spec.write_text(json.dumps({
        "systems": [{"name": "base", "max_length": MAX_LENGTH},
                    {"name": "lora", "max_length": MAX_LENGTH, "doc_instruction": True,
                     "seeds": [{"seed": 1, "adapter": adapters[0]}, {"seed": 2, "adapter": adapters[1]}]},
                    {"name": "MiniLM", "kind": "minilm", "path": minilm_path},
                    {"name": "BM25", "kind": "bm25"}],
        "compare": [["lora", "base"], ["MiniLM", "BM25"]],
        "gap": {"models": ["lora", "BM25"], "base": "base", "reference": "MiniLM"}}))
    tasks = [manpages_tiny, graded_task(tmp / "graded"), lee]
    first = run_suite(tmp, tasks, spec, "--limit-docs", "20", "--limit-queries", "12")
    second = run_suite(tmp, tasks, spec, "--limit-docs", "20", "--limit-queries", "12")
    return tmp, first, second


def test_table_has_every_row_and_column(suite):
    _, (res, table), _ = suite
    assert set(res["tasks"]) == {"manpages-limit200", "graded", "lee"}
    header = next(line for line in table.splitlines() if line.startswith("| system | seeds"))
    for col in ("manpages-limit200 nDCG@10", "graded nDCG@10", "lee Spearman", "mean nDCG@10 (2 retrieval tasks)"):
        assert col in header
    main = table.split("\n\n")[1].splitlines()
    assert [row.split(" | ")[0].strip("| ") for row in main[2:]] == ["base", "lora", "MiniLM", "BM25"]
    bm25 = next(row for row in main if row.startswith("| BM25 "))
    assert bm25.split(" | ")[4] == "-"  # BM25 has no STS score
    for section in ("## Paired comparisons", "## Gap closed", "## graded (retrieval: 4 queries, 8 documents)",
                    "## lee (sts: 12 pairs)"):
        assert section in table
    assert res["tasks"]["manpages-limit200"]["documents"] == 20
    assert res["tasks"]["manpages-limit200"]["queries"] == 12


def test_every_ci_contains_its_mean(suite):
    tmp, (res, _), _ = suite
    n = 0
    for task, t in res["tasks"].items():
        for system, r in t["systems"].items():
            for metric, m in r["metrics"].items():
                assert m["ci"][0] <= m["mean"] <= m["ci"][1], (task, system, metric, m)
                assert len(m["per_seed"]) == (2 if system == "lora" else 1)
                assert abs(np.mean(m["per_seed"]) - m["mean"]) < 1e-12
                n += 1
            arrays = np.load(tmp / "out" / r["per_query"])
            key = "ndcg_at_10" if t["kind"] == "retrieval" else "cosine"
            assert arrays[key].shape == ((2 if system == "lora" else 1), t.get("queries") or t["pairs"])
    assert n == 4 * 3 + 4 * 3 + 3 * 2  # two retrieval tasks x 4 systems x 3 metrics, STS: 3 systems x 2
    for system, m in res["retrieval_mean_ndcg@10"].items():
        assert m["ci"][0] <= m["mean"] <= m["ci"][1]
    assert res["systems"][1]["seeds"] == [1, 2]


def test_comparisons_and_gap(suite):
    tmp, (res, _), _ = suite
    assert (tmp / "out" / "gap_closed.png").stat().st_size > 1000
    tasks = res["tasks"]
    for c in res["comparisons"]:
        allowed = VERDICTS | {f"{c['a']} better", f"{c['b']} better"}
        for task, d in c["tasks"].items():
            for metric, x in d.items():
                assert x["verdict"] in allowed
                a, b = (tasks[task]["systems"][s]["metrics"][metric]["mean"] for s in (c["a"], c["b"]))
                assert abs(x["diff"] - (a - b)) < 1e-12 and x["ci"][0] <= x["diff"] <= x["ci"][1]
        assert c["retrieval_mean"]["verdict"] in allowed
    assert set(res["comparisons"][1]["tasks"]) == {"manpages-limit200", "graded"}  # BM25 has no STS
    gap = res["gap_closed"]["models"]["BM25"]
    nd = lambda t, s: tasks[t]["systems"][s]["metrics"]["ndcg@10"]["mean"]  # noqa: E731
    for t, v in gap["tasks"].items():
        assert abs(v - (nd(t, "BM25") - nd(t, "base")) / (nd(t, "MiniLM") - nd(t, "base"))) < 1e-12
    assert abs(gap["mean"] - np.mean(list(gap["tasks"].values()))) < 1e-12


def test_rerun_is_served_from_the_cache(suite):
    _, (first, _), (second, _) = suite
    assert first["settings"]["cache"]["misses"] > 0
    assert second["settings"]["cache"] == {"hits": first["settings"]["cache"]["misses"], "misses": 0}
    assert first["tasks"] == second["tasks"] and first["comparisons"] == second["comparisons"]


def test_base_row_equals_ullme_eval(tmp_path, model_path, manpages_tiny, lee):
    """The harness's defaults for the base model (no document instruction, bidirectional, mean pooling, the
    task's instruction for queries and STS texts) give `ullme eval`'s numbers on the same data."""
    cli = Path(os.environ.get("ULLME_BIN", REPO / "build" / "bin" / "ullme"))
    if not cli.exists():
        pytest.fail(f"{cli} is missing: make lib")
    from evalkit.tasks import load_task
    t = load_task(manpages_tiny, limit_docs=20)
    mp = write_retrieval_task(tmp_path / "manpages-20", list(zip(t.query_ids, t.queries)),
                              [(i, d["title"], d["text"]) for i, d in zip(t.doc_ids, t.docs)],
                              [(q, d, g) for q in t.query_ids for d, g in t.qrels[q].items()], {"name": "manpages-20"})
    sts = tmp_path / "lee-12"
    sts.mkdir()
    (sts / "pairs.tsv").write_text("".join((Path(lee) / "pairs.tsv").read_text().splitlines(keepends=True)[:13]))
    spec = tmp_path / "base.json"
    spec.write_text(json.dumps([{"name": "base", "max_length": MAX_LENGTH}]))
    res, _ = run_suite(tmp_path, [mp, str(sts)], spec)
    # retrieval: the same ranking, so the same numbers; STS: the CLI sums the cosine in float32, here float64
    for task, data, metrics, tol in (("retrieval", mp, ("ndcg@10", "mrr@10", "recall@10"), 1e-12),
                                     ("sts", str(sts), ("spearman", "pearson"), 1e-5)):
        out = tmp_path / f"cli-{task}.json"
        subprocess.run([str(cli), "eval", "--task", task, "--data", data, "--max-length", str(MAX_LENGTH), "--no-adapter",
                        "--output", str(out), "--quiet"], check=True, capture_output=True)
        cli_metrics = json.loads(out.read_text())["metrics"]
        ours = res["tasks"]["manpages-20" if task == "retrieval" else "lee-12"]["systems"]["base"]["metrics"]
        for m in metrics:
            assert abs(ours[m]["mean"] - cli_metrics[m]) < tol, (task, m, ours[m]["mean"], cli_metrics[m])


def test_saved_runs_reproduce_the_evaluation_they_read(suite, tmp_path, manpages_tiny, lee):
    """Rows read back from the first evaluation (evalkit "saved"), one of them a single seed of the two-seed
    row, give that evaluation's per-seed numbers; a task that differs (here: fewer documents) is refused."""
    tmp, (first, _), _ = suite
    earlier = str(tmp / "out")
    spec = tmp_path / "saved.json"
    spec.write_text(json.dumps({"systems": [
        {"name": "base", "saved": {"dir": earlier, "system": "base"}},
        {"name": "lora-seed-2", "saved": {"dir": earlier, "system": "lora", "seed_index": 1}},
        {"name": "BM25", "kind": "bm25", "saved": {"dir": earlier, "system": "BM25"}}]}))
    tasks = [manpages_tiny, graded_task(tmp_path / "graded"), lee]
    res, _ = run_suite(tmp_path, tasks, spec, "--limit-docs", "20", "--limit-queries", "12")
    assert res["settings"]["cache"] == {"hits": 0, "misses": 0}
    for task, t in res["tasks"].items():
        for row, (name, seed) in {"base": ("base", 0), "lora-seed-2": ("lora", 1), "BM25": ("BM25", 0)}.items():
            if name not in first["tasks"][task]["systems"]:
                continue
            for metric, m in t["systems"][row]["metrics"].items():
                was = first["tasks"][task]["systems"][name]["metrics"][metric]["per_seed"][seed]
                assert len(m["per_seed"]) == 1 and abs(m["per_seed"][0] - was) < 1e-12, (task, row, metric)
    with pytest.raises(ValueError, match="task manpages-limit200 differs: queries 12 there, 10 here"):
        run_suite(tmp_path, tasks, spec, "--limit-docs", "10", "--limit-queries", "12")
