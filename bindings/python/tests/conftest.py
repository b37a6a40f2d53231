"""Shared fixtures for the libullme Python binding tests.

The tests use the libullme.so the binding finds (ULLME_LIB, then build/lib, .build/release, .build/debug).
A missing library, default model or fixture fails the test (nothing is skipped).
"""
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
sys.path.insert(0, str(HERE.parent))  # the package from source, unless installed

import ullme  # noqa: E402

FIXTURES = REPO / "Tests" / "fixtures"
REQUIRE = os.environ.get("ULLME_REQUIRE_LIB") == "1"


def _need(msg):
    # A missing library, model or fixture is a failure, never a skip.
    pytest.fail(msg)


@pytest.fixture(scope="session")
def lib():
    try:
        return ullme._lib.lib()
    except ullme.Error as e:
        _need(str(e))


@pytest.fixture(scope="session")
def model_path(lib):
    p = ullme.default_model_path()
    if not p.is_file():
        _need(f"{p} missing: run scripts/fetch_models.sh")
    return str(p)


@pytest.fixture(scope="session")
def model(model_path):
    m = ullme.Model(model_path)
    yield m
    m.close()




def cosine(a, b):
    import numpy as np
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="session")
def repo_root():
    return REPO


def _cli_path():
    """The `ullme` CLI matching the library under test: $ULLME_CLI, else beside $ULLME_LIB (ullme-cli in a
    SwiftPM build directory, ../bin/ullme in build/lib), else build/bin/ullme."""
    if os.environ.get("ULLME_CLI"):
        return Path(os.environ["ULLME_CLI"])
    lib = os.environ.get("ULLME_LIB")
    if lib:
        d = Path(lib).resolve().parent
        for c in (d / "ullme-cli", d.parent / "bin" / "ullme"):
            if c.is_file():
                return c
    return REPO / "build" / "bin" / "ullme"


@pytest.fixture(scope="session")
def cli():
    p = _cli_path()
    if not p.is_file():
        _need(f"{p} missing: run make lib (or set ULLME_CLI)")
    return p


def read_checkpoint(path):
    """Parses a GRL checkpoint (safetensors) strictly in Python: header, every tensor's dtype, shape and
    byte range, the data area exactly covered, every value finite. Returns (metadata, {name: array})."""
    import json
    import struct
    import numpy as np
    raw = Path(path).read_bytes()
    assert len(raw) >= 8, f"{path}: {len(raw)} bytes"
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), f"{path}: header length {n} beyond the file ({len(raw)} bytes)"
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, end = {}, 0
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        assert t["dtype"] == "F32", (name, t["dtype"])
        b, e = t["data_offsets"]
        assert b == end and e - b == 4 * int(np.prod(t["shape"], dtype=np.int64)), (name, t)
        a = np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"])
        assert np.isfinite(a).all(), f"{path}: {name} holds non-finite values"
        tensors[name] = a
        end = e
    assert end == len(data), f"{path}: data area {len(data)} bytes, tensors cover {end}"
    assert meta.get("format") == "ullme-grl-checkpoint-1" and int(meta["step"]) >= 1, meta
    return meta, tensors


def tiny_train_config(repo, out, steps, interval=1, extra="", rank=4):
    """A tiny-llama GRL config that trains in ~20-100 ms a step (release build)."""
    return f"""
model: {repo}/Tests/fixtures/tiny-llama
data:
  - name: wordnet-tiny
    file: {repo}/data/grl/wordnet-tiny/train.jsonl
    instruction: Retrieve the definition.
output_dir: {out}
max_seq_length: 64
loar_r: {rank}
lora_alpha: {2 * rank}
global_batch_size: 4
gc_chunk_size: 2
max_steps: {steps}
checkpoint_interval: {interval}
{extra}
"""
