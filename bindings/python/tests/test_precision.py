"""The opt-in bf16 and int8 modes: SmolLM2 embeddings in exact, bf16 and int8 precision against the
transformers reference of test_parity.py (Tests/fixtures/smollm2/expected.json, made by
scripts/fixtures/make_parity_fixtures.py), with the path that ran printed and checked. On a CPU without AVX512_BF16
the bf16 model runs the exact kernels, says so, and the test checks that instead."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ullme
from conftest import FIXTURES, HERE, cosine

SMOL = FIXTURES / "smollm2" / "expected.json"
TINY = FIXTURES / "tiny-llama"


@pytest.fixture(scope="module")
def smol():
    return json.loads(SMOL.read_text(encoding="utf-8"))


def embed_fixture(m, smol, attention):
    return [(m.encode(e["text"], is_query=e["is_query"], instruction=e["instruction"]), e[attention], e["formatted"])
            for e in smol["texts"]]


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_smollm2_exact_bf16_int8_against_transformers(model_path, smol, attention):
    worst = {}
    for precision in ("exact", "bf16", "int8"):
        with ullme.Model(model_path, attention=attention, precision=precision) as m:
            path = m.precision_path
            print(f"\n{attention} precision={precision}: path {path!r}")
            fast = {"exact": ("exact",), "bf16": ("avx512_bf16",), "int8": ("avx512_vnni", "avx_vnni", "avx2")}[precision]
            assert path in fast or (precision == "bf16" and path.startswith("exact fallback: ")), path
            assert m.info["params"]["precision"] == ullme._lib.PRECISIONS[precision]
            cos = [(cosine(got, want), text[:40]) for got, want, text in embed_fixture(m, smol, attention)]
        worst[precision] = min(cos)
        # exact: the parity bar of test_parity.py; bf16 and int8: the fast modes' per-vector bar
        bar = 0.9999 if path == "exact" or path.startswith("exact fallback: ") else 0.999
        bad = [c for c in cos if c[0] < bar]
        assert not bad, f"{precision} ({path}): cosine < {bar} for {bad}"
    print(f"{attention}: min cosine to transformers " + ", ".join(f"{p} {w[0]:.6f} ({w[1]!r})" for p, w in worst.items()))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_fast_modes_are_batch_invariant(model_path, precision):
    texts = ["short", "a somewhat longer sentence about lighthouses and ships at sea", "", "mid length text here"]
    with ullme.Model(model_path, precision=precision) as m:
        together = m.encode(texts, batch_size=4)
        for i, t in enumerate(texts):
            assert np.array_equal(m.encode([t])[0], together[i]), t


def run_child(code, **env):
    e = dict(os.environ, **env)
    e["PYTHONPATH"] = str(HERE.parent) + os.pathsep + e.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_forced_fallback_runs_exact_and_says_so():
    # ULLME_DISABLE_BF16=1 makes the library act as on a CPU without AVX512_BF16 (read at first use).
    code = f"""
import numpy as np, ullme
ids = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7]]
with ullme.Model({str(TINY)!r}, precision="bf16") as f, ullme.Model({str(TINY)!r}, precision="exact") as x:
    same = all(np.array_equal(f.hidden_states_ids(s, "bidirectional"), x.hidden_states_ids(s, "bidirectional")) for s in ids)
    print(f.precision_path + "|" + str(same))
"""
    path, same = run_child(code, ULLME_DISABLE_BF16="1").split("|")
    print(f"\nforced fallback: path {path!r}")
    # A CPU without the instructions says so first (the AVX2-only machines).
    native = run_child(f"import ullme; print(ullme.Model({str(TINY)!r}, precision='bf16').precision_path)")
    no_bf16 = "exact fallback: CPU has no AVX512_BF16"
    assert path == (no_bf16 if native == no_bf16 else "exact fallback: AVX512_BF16 disabled"), (path, native)
    assert same == "True"


def test_precision_from_environment():
    code = f"import ullme; print(ullme.Model({str(TINY)!r}).precision_path)"
    path = run_child(code, ULLME_PRECISION="bf16")
    assert path == "avx512_bf16" or path.startswith("exact fallback: "), path
    assert run_child(code, ULLME_PRECISION="exact") == "exact"
    # int8 on the tiny float32 model: no integer weights, so exact, and the path says why.
    assert run_child(code, ULLME_PRECISION="int8") == "exact fallback: no linear layer has integer (GGUF-quantised) weights"


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_bad_precision_and_training_refuses_fast_modes(lib, precision):
    with pytest.raises(ullme.Error, match="precision"):
        ullme.Model(str(TINY), precision="fp8")
    with ullme.Model(str(TINY), precision=precision) as m:
        with pytest.raises(ullme.Error, match="precision exact") as e:
            ullme.Trainer(m)
        assert e.value.status == ullme._lib.E_STATE
