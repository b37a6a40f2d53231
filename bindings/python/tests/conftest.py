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

FIXTURES = REPO / "tests" / "fixtures"
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
