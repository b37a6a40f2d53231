"""Shared fixtures for the libullme Python binding tests.

The tests use the libullme.so the binding finds (ULLME_LIB, then build/lib, .build/release, .build/debug).
Without a library (or the default model) they are skipped, unless ULLME_REQUIRE_LIB=1 (set by
`make test-python`), which turns a missing library into a failure. With ULLME_LIB pointing at the
mock (bindings/mock, `make test-bindings-mock`) the tests of binding plumbing run and the tests of
numerics, which need the real engine, are skipped.
"""
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
sys.path.insert(0, str(HERE.parent))  # the package from source, unless installed

import ullme  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
REQUIRE = os.environ.get("ULLME_REQUIRE_LIB") == "1"


def _need(msg):
    if REQUIRE:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def lib():
    try:
        return ullme._lib.lib()
    except ullme.Error as e:
        _need(str(e))


@pytest.fixture(scope="session")
def is_mock(lib):
    return lib.ullme_version().decode().endswith("-mock")


@pytest.fixture(scope="session")
def model_path(lib, is_mock, tmp_path_factory):
    if is_mock:  # any GGUF-magic file will do
        p = tmp_path_factory.mktemp("mock") / "mock.gguf"
        p.write_bytes(b"GGUF" + b"\0" * 252)
        return str(p)
    p = ullme.default_model_path()
    if not p.is_file():
        _need(f"{p} missing: run scripts/fetch_models.sh")
    return str(p)


@pytest.fixture(scope="session")
def model(model_path):
    m = ullme.Model(model_path)
    yield m
    m.close()


@pytest.fixture
def real_engine(is_mock):
    if is_mock:
        pytest.skip("needs the real engine (running against the mock library)")


def cosine(a, b):
    import numpy as np
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
