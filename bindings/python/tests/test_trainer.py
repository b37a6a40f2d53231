"""The training entry points through the C ABI: both objectives, a step, and error handling."""
import numpy as np
import pytest

import ullme

TINY = "Tests/fixtures/tiny-llama"


@pytest.fixture(scope="module")
def tiny(repo_root):
    with ullme.Model(str(repo_root / TINY)) as m:
        yield m


def test_lm_steps_lower_the_loss(tiny):
    t = ullme.Trainer(tiny, lora_rank=4, lora_alpha=8, lora_dropout=0.0, learning_rate=1e-2, warmup_proportion=0,
                      steps_per_epoch=10)
    assert t.parameter_count > 0
    ids = [5, 17, 200, 3, 44, 90, 12, 7, 8, 9]
    losses = []
    for _ in range(10):
        losses.append(t.lm_backward([ids], [ids]))
        lr, norm = t.step()
        assert lr > 0 and np.isfinite(norm)
    assert losses[-1] < 0.9 * losses[0], losses
    t.close()


def test_embedding_backward_moves_reps_along_minus_gradient(tiny):
    t = ullme.Trainer(tiny, lora_rank=4, lora_alpha=8, lora_dropout=0.0, learning_rate=1e-2, warmup_proportion=0,
                      steps_per_epoch=10)
    seqs = [[5, 17, 200, 3], [9, 8, 7, 6, 5]]
    target = np.zeros((2, tiny.dim), np.float32)
    target[:, 0] = 1.0
    before = t.encode(seqs)
    for _ in range(5):
        t.embedding_backward(seqs, -target)   # loss = -<reps, target>: pull reps toward e0
        t.step()
    after = t.encode(seqs)
    assert after[:, 0].mean() > before[:, 0].mean()
    assert np.allclose(np.linalg.norm(after, axis=1), 1, atol=1e-5)


def test_trainer_errors(tiny):
    t = ullme.Trainer(tiny, lora_rank=4)
    with pytest.raises(ullme.Error, match="d_reps"):
        t.embedding_backward([[1, 2, 3]], np.zeros(tiny.dim - 1, np.float32))
    with pytest.raises(ullme.Error, match="vocabulary"):
        t.lm_backward([[1, 999]], [[1, 999]])
    with pytest.raises(ullme.Error):
        ullme.Trainer(tiny, lora_rank=0)
    with pytest.raises(ullme.Error):
        ullme.Trainer(tiny, lora_dropout=1.5)


def test_train_run_from_yaml(repo_root, tmp_path):
    cfg = tmp_path / "grl.yaml"
    cfg.write_text(f"""
model: {repo_root}/Tests/fixtures/tiny-llama
data:
  - name: wordnet-tiny
    file: {repo_root}/data/grl/wordnet-tiny/train.jsonl
    instruction: Given a sentence, retrieve the definition of the sense in which its word is used.
output_dir: {tmp_path}/run
max_seq_length: 128
loar_r: 4
lora_alpha: 8
global_batch_size: 8
gc_chunk_size: 4
max_steps: 3
use_gen: true
gen_loss_type: sigmoid
use_kl: true
""")
    seen = []
    records = ullme.Trainer(cfg).fit(callback=seen.append, show_progress_bar=False)
    assert [r["step"] for r in records] == [1, 2, 3] and len(seen) == 3
    assert all(r["contrastive"] > 0 and r["kl"] > 0 for r in records)
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ullme.Error, match="cancelled"):
        ullme.train(cfg, callback=lambda r: False, show_progress_bar=False)
    with pytest.raises(ullme.Error, match="no such|No such"):
        ullme.train(tmp_path / "missing.yaml")


def test_activation_checkpointing_gives_the_same_training(tiny):
    seqs = [[5, 17, 200, 3, 44, 90, 12], [9, 8, 7, 6, 5, 4, 3, 100]]
    d = np.sin(np.arange(2 * tiny.dim) * 0.37).astype(np.float32)
    runs = []
    for ckpt in (False, True):
        t = ullme.Trainer(tiny, lora_rank=4, lora_alpha=8, lora_dropout=0.1, learning_rate=1e-2, warmup_proportion=0,
                          steps_per_epoch=10, activation_checkpointing=ckpt)
        out = []
        for _ in range(3):
            out.append(t.embedding_backward(seqs, d))
            out.append(np.float32(t.lm_backward(seqs, seqs)))
            out.append(np.float32(t.step()[1]))
        out.append(t.encode(seqs))
        t.close()
        runs.append(out)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_stored_weights_give_the_same_results(repo_root):
    texts = ["a lighthouse keeper", "ships at sea"]
    with ullme.Model(str(repo_root / TINY), weights="dense") as d, ullme.Model(str(repo_root / TINY), weights="stored") as s:
        assert np.array_equal(d.encode(texts), s.encode(texts))
        seqs = [[5, 17, 200, 3, 44], [9, 8, 7]]
        g = np.sin(np.arange(2 * d.dim) * 0.37).astype(np.float32)
        t1, t2 = ullme.Trainer(d, lora_rank=4, seed=3), ullme.Trainer(s, lora_rank=4, seed=3)
        assert np.array_equal(t1.embedding_backward(seqs, g), t2.embedding_backward(seqs, g))
        assert t1.lm_backward(seqs, seqs) == t2.lm_backward(seqs, seqs)
        assert t1.step()[1] == t2.step()[1]
        t1.close(); t2.close()
    with pytest.raises(ullme.Error, match="weights"):
        ullme.Model(str(repo_root / TINY), weights="fp8")
