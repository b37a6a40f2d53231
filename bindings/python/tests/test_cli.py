"""The `ullme` command line (build/bin/ullme, or $ULLME_CLI): per-command help, --version, option checks,
search ids and --output formats, embed --output by extension, eval's missing-data error, train's refusal to
overwrite a run, losses.png from any working directory, the --threads limit."""
import csv
import io
import json
import os
import subprocess

import numpy as np
import pytest

import ullme
from conftest import REPO, tiny_train_config

COMMANDS = {"embed": "--file", "search": "--corpus", "score": "--query", "eval": "--task", "info": "--model",
            "train": "--overwrite", "fetch-model": None}


def run(cli, *args, cwd=None, input=None, timeout=600):
    return subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, cwd=cwd, input=input,
                          timeout=timeout)


# ---- help and version ---------------------------------------------------------------------------------
def test_global_help_lists_every_command(cli):
    r = run(cli, "--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert f"\n  {name} " in r.stdout, f"{name} missing from ullme --help"
    bare = run(cli)
    assert bare.returncode == 2 and "usage: ullme <command>" in bare.stderr


@pytest.mark.parametrize("name", list(COMMANDS))
def test_per_command_help(cli, name):
    global_help = run(cli, "--help").stdout
    for flag in ("--help", "-h"):
        r = run(cli, name, flag)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"usage: ullme {name}"), r.stdout[:200]
        assert r.stdout != global_help and "commands:" not in r.stdout
        if COMMANDS[name]:
            assert COMMANDS[name] in r.stdout
    # each command lists only its own options
    assert "--corpus" not in run(cli, "embed", "--help").stdout
    assert "--task" in run(cli, "eval", "--help").stdout and "--resume" not in run(cli, "eval", "--help").stdout


def test_version(cli):
    r = run(cli, "--version")
    assert r.returncode == 0
    v = ullme.library_version()
    assert r.stdout.strip() == f"ullme {v} (libullme {v}, C ABI {ullme.ABI_VERSION})"


def test_unknown_command_and_foreign_option(cli):
    r = run(cli, "frobnicate")
    assert r.returncode == 2 and 'unknown command "frobnicate"' in r.stderr
    r = run(cli, "embed", "--corpus", "x.txt", "hi")
    assert r.returncode == 1 and "ullme embed has no option --corpus (an option of search)" in r.stderr


@pytest.mark.parametrize("value", ["999999", "0", "-3", "two"])
def test_threads_limit(cli, value):
    r = run(cli, "embed", "--threads", value, "hi")
    assert r.returncode == 1 and "--threads expects an integer in 1...1024" in r.stderr, r.stderr


# ---- embed and search outputs -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(model_path):
    """What the CLI runs without --model: the default model (the base GGUF + the shipped adapter)."""
    with ullme.Model() as m:
        yield m


TEXTS = ["The lighthouse keeper lit the lamp.", 'A "quoted", comma text', "Bread needs flour."]


def test_embed_output_formats(cli, model, tmp_path):
    want = model.encode(TEXTS)
    npy, jsonl, csv_path = tmp_path / "e.npy", tmp_path / "e.jsonl", tmp_path / "e.csv"
    for out in (npy, jsonl, csv_path):
        r = run(cli, "embed", *TEXTS, "--output", out, "--quiet")
        assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(npy), want, atol=1e-6)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows], dtype=np.float32), want, atol=1e-6)
    table = list(csv.reader(io.StringIO(csv_path.read_text())))
    assert table[0][:3] == ["index", "text", "e0"] and len(table[0]) == 2 + model.dim
    assert [row[1] for row in table[1:]] == TEXTS
    np.testing.assert_allclose(np.array([row[2:] for row in table[1:]], dtype=np.float32), want, atol=1e-6)


@pytest.mark.parametrize("name", ["out.txt", "out", "out.json", "out.parquet"])
def test_embed_unknown_output_extension_is_refused(cli, tmp_path, name):
    r = run(cli, "embed", "hi", "--output", tmp_path / name, timeout=30)
    assert r.returncode == 1 and "unknown format" in r.stderr and ".npy, .jsonl or .csv" in r.stderr, r.stderr
    assert not (tmp_path / name).exists()


def test_search_ids_and_outputs(cli, model, tmp_path):
    docs = [{"_id": "doc-lamp", "title": "Lighthouse", "text": "A tower whose lamp guides ships at night."},
            {"_id": "doc-bread", "text": "Knead the dough, let it rise and bake it."},
            {"id": 42, "text": "Income tax returns are due in April."}]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = ["how do ships find their way at night?", "baking bread"]
    texts = ["Lighthouse A tower whose lamp guides ships at night.", docs[1]["text"], docs[2]["text"]]
    scores = model.similarity(model.encode(queries), model.encode(texts, is_query=False))
    ids = ["doc-lamp", "doc-bread", "42"]

    r = run(cli, "search", "--corpus", corpus, "--query", queries[0], "-k", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    shown = [line.split("[")[1].split("]")[0] for line in r.stdout.splitlines()[1:]]
    assert shown == [ids[i] for i in np.argsort(-scores[0], kind="stable")], r.stdout

    out = tmp_path / "hits.jsonl"
    r = run(cli, "search", "--corpus", corpus, "--query", queries[0], "--query", queries[1], "-k", "3",
            "--output", out, "--quiet")
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    hits = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(hits) == 6
    for qi, q in enumerate(queries):
        mine = [h for h in hits if h["query"] == q]
        order = np.argsort(-scores[qi], kind="stable")
        assert [h["id"] for h in mine] == [ids[i] for i in order]
        assert [h["rank"] for h in mine] == [1, 2, 3]
        np.testing.assert_allclose([h["score"] for h in mine], scores[qi][order], atol=1e-5)

    out_csv = tmp_path / "hits.csv"
    r = run(cli, "search", "--corpus", corpus, "--query", queries[1], "-k", "1", "--output", out_csv, "--quiet")
    assert r.returncode == 0, r.stderr
    table = list(csv.reader(io.StringIO(out_csv.read_text())))
    best = ids[int(np.argmax(scores[1]))]
    assert table[0] == ["query", "rank", "id", "score", "text"] and table[1][:3] == [queries[1], "1", best]

    plain = tmp_path / "plain.txt"
    plain.write_text("Bread needs flour.\n\nShips follow the lighthouse.\n")
    r = run(cli, "search", "--corpus", plain, "--query", "lighthouse", "-k", "5", "--quiet")
    # plain lines: the line number (1-based; the empty line 2 is no document)
    assert r.returncode == 0 and sorted(l.split("[")[1].split("]")[0] for l in r.stdout.splitlines()[1:]) == ["1", "3"]
    r = run(cli, "search", "--corpus", plain, "--query", "x", "--output", tmp_path / "h.npy", timeout=30)
    assert r.returncode == 1 and ".jsonl or .csv" in r.stderr


# ---- eval ----------------------------------------------------------------------------------------------------
def test_eval_missing_data_is_a_clear_error(cli, tmp_path):
    for task in ("retrieval", "sts"):
        r = run(cli, "eval", "--task", task, "--data", "/nope", timeout=30)
        assert r.returncode == 1, r.stderr
        assert "/nope: no such directory" in r.stderr and "data/README.md" in r.stderr, r.stderr
        assert "Cocoa" not in r.stderr and "Domain" not in r.stderr, r.stderr
    (tmp_path / "empty").mkdir()
    r = run(cli, "eval", "--task", "retrieval", "--data", tmp_path / "empty", timeout=30)
    assert r.returncode == 1 and "qrels.tsv: cannot open (No such file or directory" in r.stderr, r.stderr
    assert "Cocoa" not in r.stderr


def test_eval_runs_on_a_small_set(cli, tmp_path):
    d = tmp_path / "sts"
    d.mkdir()
    (d / "pairs.tsv").write_text("sentence1\tsentence2\tscore\nA cat sleeps.\tA cat is asleep.\t5\n"
                                 "A cat sleeps.\tTaxes are due.\t0\nShips sail.\tBoats sail.\t4\n")
    r = run(cli, "eval", "--task", "sts", "--data", d, "--output", tmp_path / "r.json", "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["pairs"] == 3 and -1 <= res["metrics"]["spearman"] <= 1


# ---- train -----------------------------------------------------------------------------------------------
def _run_files(out):
    return {p: (out / p).read_bytes() for p in ("checkpoint.safetensors", "log.jsonl", "adapter/adapter_model.safetensors")}


def test_train_refuses_to_overwrite_and_plots_from_any_directory(cli, tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(tiny_train_config(REPO, out, steps=2))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    r = run(cli, "train", cfg, "--quiet", cwd=elsewhere)   # not the repository root
    assert r.returncode == 0, r.stderr
    png = out / "losses.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", r.stderr
    before = _run_files(out)

    r = run(cli, "train", cfg, "--quiet", cwd=elsewhere)
    assert r.returncode == 1, r.stderr
    assert f"{out} already holds a run (checkpoint.safetensors, log.jsonl, adapter)" in r.stderr, r.stderr
    assert "--resume" in r.stderr and "--overwrite" in r.stderr
    assert _run_files(out) == before, "a refused run changed the earlier run's files"

    r = run(cli, "train", cfg, "--quiet", "--resume", "--overwrite")
    assert r.returncode == 1 and "exclude each other" in r.stderr

    # --overwrite starts afresh: a 1-step run replaces the 2-step one (no stale step 2 in log or checkpoint).
    cfg.write_text(tiny_train_config(REPO, out, steps=1))
    r = run(cli, "train", cfg, "--quiet", "--overwrite", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1], steps
    from conftest import read_checkpoint
    assert read_checkpoint(out / "checkpoint.safetensors")[0]["step"] == "1"
    assert png.is_file()


def test_train_threads_limit(cli, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(tiny_train_config(REPO, tmp_path / "run", steps=1))
    r = run(cli, "train", cfg, "--threads", "999999", timeout=30)
    assert r.returncode == 1 and "--threads expects an integer in 1...1024" in r.stderr, r.stderr
    cfg.write_text(tiny_train_config(REPO, tmp_path / "run", steps=1, extra="threads: 999999"))
    r = run(cli, "train", cfg, timeout=30)
    assert r.returncode == 1 and "threads" in r.stderr and "1024" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "run" / "log.jsonl")
