"""scripts/convert_reference_checkpoint.py: training checkpoints of the reference code bases -> our adapters.

Each checkpoint is built here the way its code base builds it (torch + peft on the tiny llama fixture), with
random non-zero LoRA weights, saved in bfloat16 as both train: an ULLME `lastest.ckpt` (the ULLME module's
trainable tensors: PEFT LoRA named `encoder_lora` on the causal LM under `encoder.`, and the projection head)
and a GenC `step_N.ckpt` (its LoRA wrapper's keys `model.model.layers...lora_A.{adapter}.weight`, two
adapters `emb_x` and `gen_x`). The converted adapter must give, through ullme.Model, the bidirectional
mean-pooled hidden states of the original PEFT model with the same adapter active (bf16 weights, float32
compute, as the reference's tensors would be loaded), and load into PEFT itself.
"""
import sys

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM

import ullme
from conftest import FIXTURES, REPO
from test_adapter import bidir_mean_pooled

sys.path.insert(0, str(REPO / "scripts"))
import convert_reference_checkpoint as conv  # noqa: E402

BASE = FIXTURES / "tiny-llama"
IDS = [[1, 5, 9, 23, 40, 7], [1, 88, 3]]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
R, ALPHA = 4, 8


class Opaque:
    """A pickled object, as an old scheduler would be: refused without --trust-pickle."""


def lora_model(adapters, seed):
    """The causal LM with PEFT LoRA adapters of random non-zero weights, rounded to bfloat16 as trained."""
    torch.manual_seed(seed)
    causal = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32, attn_implementation="eager")
    cfg = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, bias="none")
    pm = get_peft_model(causal, cfg, adapter_name=adapters[0])
    for name in adapters[1:]:
        pm.add_adapter(name, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".lora_" in n:
                p.copy_((torch.randn_like(p) * 0.2).bfloat16().float())
    return pm.eval()


def reference(pm, adapter):
    pm.set_adapter(adapter)
    return bidir_mean_pooled(pm.base_model.model.model, IDS)


def ours(adapter_dir):
    with ullme.Model(BASE, adapter=adapter_dir) as m:
        return np.stack([m.hidden_states_ids(ids, attention="bidirectional").mean(0) for ids in IDS])


def fabric_state(model_sd):
    """What Lightning Fabric's save writes: the model's state dict beside the optimizer's and the counters."""
    return {"model": model_sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": []}]},
            "scheduler": {"last_epoch": 3, "_step_count": 4}, "current_step": 3, "epoch_num": 0}


def check_loads_into_peft(out, want):
    base = AutoModel.from_pretrained(BASE, dtype=torch.float32, attn_implementation="eager").eval()
    pm = PeftModel.from_pretrained(base, str(out)).eval()
    saved = load_file(str(out / "adapter_model.safetensors"))
    sd = pm.state_dict()
    for k, v in saved.items():
        loaded = k.replace(".weight", "").replace(".lora_A", ".lora_A.default").replace(".lora_B", ".lora_B.default") + ".weight"
        assert torch.equal(sd[loaded], v), k
    assert np.abs(bidir_mean_pooled(pm, IDS) - want).max() <= 1e-4


def test_ullme_lastest_ckpt(lib, tmp_path):
    pm = lora_model(["encoder_lora"], seed=1)
    torch.manual_seed(2)
    head = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64))
    ullme_module = torch.nn.Module()
    ullme_module.encoder, ullme_module.output_projection = pm, head
    trainable = {n for n, p in ullme_module.named_parameters() if p.requires_grad}
    sd = {k: v.bfloat16() for k, v in ullme_module.state_dict().items() if k in trainable}
    assert any(k.startswith("encoder.base_model.model.model.layers.0.self_attn.q_proj.lora_A.encoder_lora") for k in sd)
    ckpt = tmp_path / "lastest.ckpt"
    torch.save(fabric_state(sd), ckpt)

    out = tmp_path / "adapter"
    summary = conv.convert(str(ckpt), str(out), lora_alpha=ALPHA)
    assert summary["adapter"] == "encoder_lora" and summary["r"] == R and summary["projection_head"]
    assert summary["target_modules"] == sorted(TARGETS) and summary["tensors"] == 2 * 7 * summary["layers"]
    want = reference(pm, "encoder_lora")
    got = ours(out)
    assert np.abs(got - want).max() <= 1e-4, np.abs(got - want).max()
    with ullme.Model(BASE) as m:  # the adapter matters
        assert np.abs(m.hidden_states_ids(IDS[0], attention="bidirectional").mean(0) - want[0]).max() > 1e-3
    heads = load_file(str(out / "projection_head.safetensors"))
    assert set(heads) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert torch.equal(heads["2.weight"], head[2].weight.detach().bfloat16().float())
    check_loads_into_peft(out, want)


def test_genc_step_ckpt_two_adapters(lib, tmp_path):
    pm = lora_model(["emb_msmarco", "gen_msmarco"], seed=3)
    # GenC's LoRA wrapper holds the EmbeddingLM as `.model`: keys are "model." + the causal LM's own names.
    sd = {"model." + k[len("base_model.model."):]: v.bfloat16()
          for k, v in pm.state_dict().items() if "lora_" in k}
    assert "model.model.layers.1.mlp.down_proj.lora_B.gen_msmarco.weight" in sd
    ckpt = tmp_path / "step_500.ckpt"
    torch.save({"iter_num": 500, **fabric_state(sd)}, ckpt)

    out = tmp_path / "emb"
    summary = conv.convert(str(ckpt), str(out), lora_alpha=ALPHA)
    assert summary["adapter"] == "emb_msmarco" and summary["other_adapters"] == ["gen_msmarco"]
    assert not summary["projection_head"] and not (out / "projection_head.safetensors").exists()
    want_emb = reference(pm, "emb_msmarco")
    assert np.abs(ours(out) - want_emb).max() <= 1e-4
    conv.convert(str(ckpt), str(tmp_path / "gen"), adapter="gen_msmarco", lora_alpha=ALPHA)
    want_gen = reference(pm, "gen_msmarco")
    assert np.abs(ours(tmp_path / "gen") - want_gen).max() <= 1e-4
    assert np.abs(want_gen - want_emb).max() > 1e-3
    check_loads_into_peft(out, want_emb)


def test_conversion_errors(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no such file"):
        conv.main([str(tmp_path / "missing.ckpt"), str(tmp_path / "out")])
    torch.save({"model": {"model.embed_tokens.weight": torch.zeros(2, 2)}}, tmp_path / "nolora.ckpt")
    with pytest.raises(SystemExit, match="no LoRA tensors"):
        conv.main([str(tmp_path / "nolora.ckpt"), str(tmp_path / "out")])
    two = {f"model.model.layers.0.self_attn.q_proj.lora_{ab}.{n}.weight": torch.zeros(*shape)
           for n in ("first", "second") for ab, shape in (("A", (2, 8)), ("B", (8, 2)))}
    torch.save({"model": two}, tmp_path / "two.ckpt")
    with pytest.raises(SystemExit, match=r"several adapters \['first', 'second'\]: pick one with --adapter"):
        conv.main([str(tmp_path / "two.ckpt"), str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="no adapter named 'third'"):
        conv.main([str(tmp_path / "two.ckpt"), str(tmp_path / "out"), "--adapter", "third"])
    half = {k: v for k, v in two.items() if ".lora_B." not in k}
    torch.save({"model": half}, tmp_path / "half.ckpt")
    with pytest.raises(SystemExit, match="lora_A and lora_B must both be present"):
        conv.main([str(tmp_path / "half.ckpt"), str(tmp_path / "out"), "--adapter", "first"])
    torch.save({"model": two, "scheduler": Opaque()}, tmp_path / "opaque.ckpt")
    with pytest.raises(SystemExit, match="--trust-pickle"):
        conv.main([str(tmp_path / "opaque.ckpt"), str(tmp_path / "out"), "--adapter", "first"])
