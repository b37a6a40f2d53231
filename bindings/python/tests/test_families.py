"""Every backbone family loads through the Python binding and reproduces transformers' hidden states."""
import json

import numpy as np
import pytest

import ullme

FAMILIES = ["tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen2-swa", "tiny-qwen3", "tiny-phi", "tiny-phi3", "tiny-phi3-longrope",
            "tiny-gemma2", "tiny-gemma3"]


@pytest.mark.parametrize("name", FAMILIES)
def test_family_loads_and_matches(name, repo_root):
    path = repo_root / "Tests" / "fixtures" / name
    expected = json.loads((path / "expected.json").read_text())
    with ullme.Model(str(path)) as m:
        assert m.dim == expected["hidden_size"]
        for attention in ("causal", "bidirectional"):
            for ids, n, want in zip(expected["ids"], expected["lengths"], expected[attention]["hidden"]):
                got = m.hidden_states_ids(ids[:n], attention=attention)
                assert np.abs(got - np.asarray(want, np.float32)).max() <= 1e-4, (name, attention)
