"""`base_precision: bf16` end to end: a short GRL run of `ullme train` on SmolLM2 (the committed tiny WordNet set)
follows the exact run of the same seed far more closely than two exact runs of different seeds follow each other. Where the CPU has no AVX512_BF16 the run says it fell back and logs the exact run's losses."""
import json
import subprocess


def config(repo, model, out, seed, precision):
    return f"""
model: {model}
data:
  - name: wordnet-tiny
    file: {repo}/data/grl/wordnet-tiny/train.jsonl
    instruction: Given a sentence, retrieve the definition of the sense in which its word is used.
output_dir: {out}
max_seq_length: 64
global_batch_size: 4
gc_chunk_size: 2
max_steps: 6
learning_rate: 0.0002
checkpoint_interval: 1000
seed: {seed}
base_precision: {precision}
use_gen: true
gen_loss_type: sigmoid
use_kl: true
"""


def run(cli, repo, model, tmp_path, seed, precision):
    out = tmp_path / f"{precision}-{seed}"
    cfg = tmp_path / f"{precision}-{seed}.yaml"
    cfg.write_text(config(repo, model, out, seed, precision))
    p = subprocess.run([str(cli), "train", str(cfg), "--quiet"], check=True, capture_output=True, text=True)
    losses = [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 6, losses
    return losses, p.stderr


def mean(x):
    return sum(x) / len(x)


def test_short_grl_run_matches_exact_within_noise(repo_root, model_path, cli, tmp_path):
    exact, exact_log = run(cli, repo_root, model_path, tmp_path, 777, "exact")
    fast, fast_log = run(cli, repo_root, model_path, tmp_path, 777, "bf16")
    assert "base products exact," in exact_log, exact_log
    if "base products avx512_bf16," not in fast_log:
        # The fallback: it says why and runs the exact products, bit for bit.
        assert "base products exact fallback: CPU has no AVX512_BF16" in fast_log, fast_log
        assert fast == exact
        return
    other, _ = run(cli, repo_root, model_path, tmp_path, 778, "exact")
    gap = [abs(a - b) for a, b in zip(exact, fast)]
    seed_gap = [abs(a - b) for a, b in zip(exact, other)]
    print(f"exact {exact}\nbf16 {fast}\nexact seed 778 {other}\n"
          f"mean |bf16 - exact| {mean(gap):.4f} (max {max(gap):.4f}), mean |seed 778 - seed 777| {mean(seed_gap):.4f}")
    assert fast != exact, "bf16 products must change the losses somewhat"
    assert mean(gap) < 0.25 * mean(seed_gap)
    assert max(gap) < 0.02 * max(exact)


def test_trainer_base_precision(repo_root):
    import pytest
    import ullme
    with ullme.Model(f"{repo_root}/Tests/fixtures/tiny-llama") as m:
        assert ullme.Trainer(m).base_precision_path == "exact"
        assert ullme.Trainer(m, base_precision="exact").base_precision_path == "exact"
        assert ullme.Trainer(m, base_precision="bf16").base_precision_path in (
            "avx512_bf16", "exact fallback: CPU has no AVX512_BF16")
        with pytest.raises(ullme.Error, match="base_precision"):
            ullme.Trainer(m, base_precision="int8")
