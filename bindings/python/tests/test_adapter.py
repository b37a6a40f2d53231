"""LoRA adapters between libullme and PEFT.

- test_peft_loads_our_export: the adapters that AdapterTests.testWriteAdaptersForPEFT (Swift) exported to
  Tests/fixtures/generated/adapter-export/<model>/ load with PeftModel.from_pretrained on the tiny HF model
  (AutoModel), every tensor lands in the model, and the mean-pooled bidirectional embeddings match ours
  (ours.json) with cosine >= 0.9999. Order: run the Swift tests first (`make test` does).
- test_model_adapter_param: ullme.Model(path, adapter=dir) on the adapters PEFT made
  (Tests/fixtures/peft-adapters, scripts/fixtures/make_adapter_fixtures.py) gives PEFT's embeddings.

torch and peft are required (CI installs them): a missing import fails the module, it is never skipped.
"""
import json

import numpy as np
import pytest
import torch  # noqa: F401  (required: fail loudly when missing)
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModel

import ullme
from conftest import FIXTURES, cosine

MODELS = ["tiny-llama", "tiny-phi3"]
EXPORT = FIXTURES / "generated" / "adapter-export"


def bidir_mean_pooled(model, seqs):
    """Mean-pooled final hidden states with the 4-D bidirectional mask of docs/families.md."""
    L = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), L, dtype=torch.long)
    attn = torch.zeros(len(seqs), L, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        attn[b, :len(s)] = 1
    keys = torch.where(attn.bool(), torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min))
    mask = keys[:, None, None, :].expand(len(seqs), 1, L, L).contiguous()
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = attn[..., None].float()
    return ((h * m).sum(1) / m.sum(1)).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_peft_loads_our_export(name):
    d = EXPORT / name
    if not (d / "ours.json").is_file():
        pytest.fail(f"{d}/ours.json is missing: run the Swift tests first "
                    f"(swift test --filter AdapterTests; `make test` runs them before the Python tests)")
    ours = json.loads((d / "ours.json").read_text())
    cfg = json.loads((d / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["task_type"] == "FEATURE_EXTRACTION"

    base = AutoModel.from_pretrained(FIXTURES / name, dtype=torch.float32, attn_implementation="eager").eval()
    plain = bidir_mean_pooled(base, ours["ids"])
    pm = PeftModel.from_pretrained(base, d).eval()

    # PEFT ignores keys it cannot place (with a warning only): check every saved tensor arrived.
    sd = pm.state_dict()
    with safe_open(str(d / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert keys, "empty adapter file"
        for k in keys:
            loaded = k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
            assert loaded in sd, f"{k} was not loaded by PEFT (model keys like {next(iter(sd))})"
            assert torch.equal(sd[loaded], f.get_tensor(k)), k
    n_lora = sum(1 for k in sd if ".lora_A." in k or ".lora_B." in k)
    assert n_lora == len(keys), (n_lora, len(keys))

    got = bidir_mean_pooled(pm, ours["ids"])
    want = np.asarray(ours["mean_pooled"], dtype=np.float64)
    for i in range(len(want)):
        c = cosine(got[i], want[i])
        assert c >= 0.9999, f"{name} sequence {i}: cosine {c}"
        assert np.abs(got[i] - want[i]).max() <= 1e-4, f"{name} sequence {i}: max diff {np.abs(got[i] - want[i]).max()}"
        assert cosine(plain[i], want[i]) < 0.999, "the exported adapter should change the embedding"


@pytest.mark.parametrize("name", MODELS)
def test_model_adapter_param(name, lib):
    d = FIXTURES / "peft-adapters" / name
    exp = json.loads((d / "expected.json").read_text())
    with ullme.Model(FIXTURES / name, adapter=d) as m:
        assert m.info["params"]["adapter_path"] == str(d)
        for i, ids in enumerate(exp["ids"]):
            got = m.hidden_states_ids(ids, attention="bidirectional").mean(0)
            assert np.abs(got - np.asarray(exp["mean_pooled"][i])).max() <= 1e-4
    with ullme.Model(FIXTURES / name) as m:
        assert m.info["params"]["adapter_path"] is None
        got = m.hidden_states_ids(exp["ids"][0], attention="bidirectional").mean(0)
        assert np.abs(got - np.asarray(exp["mean_pooled_base"][0])).max() <= 1e-4


def test_model_adapter_errors(lib, tmp_path):
    with pytest.raises(ullme.Error) as e:
        ullme.Model(FIXTURES / "tiny-llama", adapter=tmp_path)
    assert e.value.status == ullme._lib.E_IO and "adapter_config.json" in e.value.message
    # An adapter for another model does not fit.
    with pytest.raises(ullme.Error) as e:
        ullme.Model(FIXTURES / "tiny-llama", adapter=FIXTURES / "peft-adapters" / "tiny-phi3")
    assert e.value.status == ullme._lib.E_FORMAT, e.value


def test_stacked_adapters_equal_merge_then_apply(lib, tmp_path):
    """adapter=[first, second] (LLM2Vec: MNTP, then supervised) equals PEFT merging the first adapter into the
    weights (merge_and_unload) and applying the second on top. The second adapter is the first with other
    values (B negated and scaled, A rolled), a different lora_alpha, and only the attention targets."""
    from safetensors.torch import load_file, save_file
    first = FIXTURES / "peft-adapters" / "tiny-llama"
    second = tmp_path / "second"
    second.mkdir()
    cfg = json.loads((first / "adapter_config.json").read_text())
    cfg["lora_alpha"] = 12
    cfg["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    (second / "adapter_config.json").write_text(json.dumps(cfg))
    sd = load_file(str(first / "adapter_model.safetensors"))
    sd2 = {k: (-0.7 * v if ".lora_B." in k else torch.roll(v, 1, dims=1)).contiguous()
           for k, v in sd.items() if any(f".{t}." in k for t in cfg["target_modules"])}
    save_file(sd2, str(second / "adapter_model.safetensors"))
    exp = json.loads((first / "expected.json").read_text())

    base = AutoModel.from_pretrained(FIXTURES / "tiny-llama", dtype=torch.float32, attn_implementation="eager").eval()
    merged = PeftModel.from_pretrained(base, str(first)).merge_and_unload()
    ref = PeftModel.from_pretrained(merged, str(second)).eval()
    want = bidir_mean_pooled(ref, exp["ids"])
    with ullme.Model(FIXTURES / "tiny-llama", adapter=[first, second]) as m:
        assert m.info["params"]["adapter_path"] == f"{first}\n{second}"
        for i, ids in enumerate(exp["ids"]):
            got = m.hidden_states_ids(ids, attention="bidirectional").mean(0)
            assert np.abs(got - want[i]).max() <= 1e-4, (i, np.abs(got - want[i]).max())
    with ullme.Model(FIXTURES / "tiny-llama", adapter=first) as m:  # the second adapter matters
        assert np.abs(m.hidden_states_ids(exp["ids"][0], attention="bidirectional").mean(0) - want[0]).max() > 1e-3
