"""Numerical parity with Hugging Face transformers (fixtures from scripts/fixtures/make_parity_fixtures.py)."""
import json

import numpy as np
import pytest

import ullme
from conftest import FIXTURES, cosine

SMOL = FIXTURES / "smollm2" / "expected.json"
TINY = ["tiny-llama", "tiny-llama-rope", "tiny-llama-linear"]


@pytest.fixture(scope="module")
def smol():
    return json.loads(SMOL.read_text(encoding="utf-8"))


def test_smollm2_token_ids(model, smol):
    for e in smol["texts"]:
        assert model.tokenize(e["formatted"], add_special=True) == e["ids"], e["formatted"][:60]


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_smollm2_embeddings(model_path, smol, attention):
    with ullme.Model(model_path, attention=attention) as m:
        assert m.dim == smol["hidden_size"]
        worst = []
        for e in smol["texts"]:
            got = m.encode(e["text"], is_query=e["is_query"], instruction=e["instruction"])
            assert got.shape == (m.dim,) and got.dtype == np.float32
            assert abs(np.linalg.norm(got) - 1) < 1e-4
            c = cosine(got, e[attention])
            worst.append((c, e["formatted"][:40]))
            assert m.last_stats["n_tokens"] == len(e["embed_ids"])
        bad = [w for w in worst if w[0] < 0.9999]
        assert not bad, f"cosine < 0.9999 for {bad}"


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_smollm2_hidden_rows(model, smol, attention):
    for e in smol["texts"]:
        if "hidden_causal" not in e:
            continue
        got = model.hidden_states_ids(e["embed_ids"], attention)[:4]
        want = np.array(e[f"hidden_{attention}"], dtype=np.float32)
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=2e-3 * scale)
        for r in range(len(want)):
            assert cosine(got[r], want[r]) >= 0.9999


def test_smollm2_logits_top5(model, smol):
    for e in smol["texts"]:
        if "logits_top5" not in e:
            continue
        lg = model.logits_ids(e["embed_ids"])
        assert lg.shape == (len(e["embed_ids"]), model.info["vocab_size"])
        for r, (ids, vals) in enumerate(zip(e["logits_top5"]["ids"], e["logits_top5"]["values"])):
            assert int(np.argmax(lg[r])) == ids[0]
            np.testing.assert_allclose(lg[r, ids], vals, atol=1e-2 * max(1.0, abs(vals[0])))


@pytest.mark.parametrize("name", TINY)
def test_tiny_llama(name, lib):
    exp = json.loads((FIXTURES / name / "expected.json").read_text())
    with ullme.Model(str(FIXTURES / name)) as m:
        assert m.dim == exp["hidden_size"]
        assert m.info["vocab_size"] == exp["vocab_size"]
        for b, ids in enumerate(exp["ids"]):
            for mode in ("causal", "bidirectional"):
                got = m.hidden_states_ids(ids, mode)
                want = np.array(exp[mode]["hidden"][b], dtype=np.float32)
                assert got.shape == want.shape
                d = float(np.abs(got - want).max())
                assert d <= 1e-4, f"{name} seq {b} {mode} hidden: max abs diff {d}"
            got = m.logits_ids(ids)
            want = np.array(exp["causal"]["logits"][b], dtype=np.float32)
            d = float(np.abs(got - want).max())
            assert d <= 1e-4, f"{name} seq {b} logits: max abs diff {d}"
