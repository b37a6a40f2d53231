"""Cross-language equality: the C example (--dump), the Go program (-dump) and the CLI embed the same
texts as Python, to max abs diff <= 1e-6. The C and Go programs are compiled here against the very
libullme.so the Python binding loaded. Python's embeddings are also written to
build/crosslang/python-<config>.npy for inspection."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ullme
from conftest import REPO, REQUIRE

TEXTS = [
    "What were lighthouses used for?",
    "Lighthouses guided ships along dangerous coasts with a bright light at night.",
    "Sourdough bread needs flour, water, salt and a lively starter.",
    "The stock market closed higher on Tuesday after a volatile session.",
    "",
    "Les phares guidaient les navires. 灯塔 Маяк 🌊",
    "x " * 300,
]
CONFIGS = {"query": ("", True), "candidate": ("Given a question, retrieve passages that answer it", False)}
OUT = REPO / "build" / "crosslang"


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("xl") / "texts.txt"
    p.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def python_embs(model):
    OUT.mkdir(parents=True, exist_ok=True)
    res = {}
    for name, (instr, is_query) in CONFIGS.items():
        e = model.encode(TEXTS, is_query=is_query, instruction=instr)
        np.save(OUT / f"python-{name}.npy", e)
        res[name] = e
    return res


def _flags(instr, is_query, style):
    f = []
    if instr:
        f += ["--instruction", instr] if style == "c" else ["-instruction", instr]
    if not is_query:
        f += ["--candidate"] if style == "c" else ["-candidate"]
    return f


def _read_bin(path, dim):
    a = np.fromfile(path, dtype="<f4")
    return a.reshape(-1, dim)


@pytest.fixture(scope="module")
def libdir(lib, tmp_path_factory):
    """A directory holding the loaded library as libullme.so (for -lullme), symlinked if named otherwise."""
    path = ullme.library_path()
    if os.path.basename(path) == "libullme.so":
        return os.path.dirname(path)
    d = tmp_path_factory.mktemp("lib")
    os.symlink(path, d / "libullme.so")
    return str(d)


def _need(tool):
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not installed")


@pytest.fixture(scope="module")
def c_example(libdir, tmp_path_factory):
    _need("cc")
    exe = tmp_path_factory.mktemp("c") / "example"
    subprocess.run(["cc", "-O2", f"-I{REPO / 'include'}", str(REPO / "examples/c/embed.c"), f"-L{libdir}", "-lullme",
                    f"-Wl,-rpath,{libdir}", "-o", str(exe)], check=True)
    return exe


@pytest.fixture(scope="module")
def go_example(libdir, tmp_path_factory):
    _need("go")
    exe = tmp_path_factory.mktemp("go") / "embed-go"
    env = dict(os.environ, GOFLAGS="-mod=mod", GOCACHE=str(REPO / "build/go/cache"), GOPATH=str(REPO / "build/go/path"),
               CGO_LDFLAGS=f"-L{libdir} -Wl,-rpath,{libdir}", GOPROXY="off")
    subprocess.run(["go", "build", "-o", str(exe), "."], cwd=REPO / "examples/go", env=env, check=True)
    return exe


@pytest.mark.parametrize("config", list(CONFIGS))
def test_c_equals_python(c_example, model_path, texts_file, python_embs, config, tmp_path):
    instr, is_query = CONFIGS[config]
    out = tmp_path / "c.bin"
    r = subprocess.run([str(c_example), model_path, "--dump", str(texts_file), str(out)] + _flags(instr, is_query, "c"),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = _read_bin(out, python_embs[config].shape[1])
    assert got.shape == python_embs[config].shape
    assert float(np.abs(got - python_embs[config]).max()) <= 1e-6


@pytest.mark.parametrize("config", list(CONFIGS))
def test_go_equals_python(go_example, model_path, texts_file, python_embs, config, tmp_path):
    instr, is_query = CONFIGS[config]
    out = tmp_path / "go.bin"
    r = subprocess.run([str(go_example), "-dump", str(texts_file), "-out", str(out)] + _flags(instr, is_query, "go")
                       + [model_path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = _read_bin(out, python_embs[config].shape[1])
    assert got.shape == python_embs[config].shape
    assert float(np.abs(got - python_embs[config]).max()) <= 1e-6


def _cli():
    for p in (REPO / "build/bin/ullme", REPO / ".build/release/ullme-cli", REPO / ".build/debug/ullme-cli"):
        if p.is_file():
            return p
    return None


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_cli_equals_python(model_path, texts_file, python_embs, config, how, tmp_path):
    cli = _cli()
    if cli is None:
        pytest.fail("CLI not built (make lib)")
    instr, is_query = CONFIGS[config]
    out = tmp_path / "cli.npy"
    args = [str(cli), "embed", "--model", model_path, "--output", str(out), "--quiet"] + _flags(instr, is_query, "c")
    if how == "file":
        r = subprocess.run(args + ["--file", str(texts_file)], capture_output=True, text=True)
    else:
        r = subprocess.run(args + ["-"], input=texts_file.read_text(encoding="utf-8"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == python_embs[config].shape
    assert float(np.abs(got - python_embs[config]).max()) <= 1e-6


def _ranking(stdout):
    """The "N. score  document" lines of an example's output."""
    return [line for line in stdout.splitlines() if line[:1].isdigit() and ". " in line]


def test_examples_rank_alike(c_example, go_example, model_path):
    """examples/c, examples/go and examples/python rank the same documents with the same scores."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "bindings/python"))
    runs = {"c": [str(c_example), model_path], "go": [str(go_example), "-model", model_path],
            "python": [sys.executable, str(REPO / "examples/python/rank.py"), model_path]}
    out = {k: subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout for k, cmd in runs.items()}
    assert len(_ranking(out["c"])) == 3, out["c"]
    assert _ranking(out["go"]) == _ranking(out["c"]) == _ranking(out["python"]), out
    assert "Lighthouses" in _ranking(out["python"])[0]
