"""`ullme train` killed with SIGKILL mid-run, then `--resume`d, logs the same losses as an uninterrupted run."""
import json
import os
import signal
import subprocess
import time


def config(repo, out, steps):
    return f"""
model: {repo}/Tests/fixtures/tiny-llama
data:
  - name: wordnet-tiny
    file: {repo}/data/grl/wordnet-tiny/train.jsonl
    instruction: Given a sentence, retrieve the definition of the sense in which its word is used.
output_dir: {out}
max_seq_length: 128
loar_r: 4
lora_alpha: 8
global_batch_size: 8
gc_chunk_size: 4
max_steps: {steps}
checkpoint_interval: 2
use_gen: true
gen_loss_type: sigmoid
use_kl: true
"""


def losses(log):
    by_step = {}
    for line in log.read_text().splitlines():
        r = json.loads(line)
        by_step[r["step"]] = r["loss"]   # a resumed run re-runs the steps after the last checkpoint: keep the last
    return by_step


def test_kill9_then_resume_equals_uninterrupted(repo_root, tmp_path, cli):
    steps = 14
    (tmp_path / "a.yaml").write_text(config(repo_root, tmp_path / "a", steps))
    (tmp_path / "b.yaml").write_text(config(repo_root, tmp_path / "b", steps))
    subprocess.run([str(cli), "train", str(tmp_path / "a.yaml"), "--quiet"], check=True, capture_output=True)
    reference = losses(tmp_path / "a" / "log.jsonl")
    assert sorted(reference) == list(range(1, steps + 1))

    proc = subprocess.Popen([str(cli), "train", str(tmp_path / "b.yaml"), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "b" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 5):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    assert 5 <= killed_at < steps, f"the run was not interrupted mid-way ({killed_at} steps logged)"
    subprocess.run([str(cli), "train", str(tmp_path / "b.yaml"), "--quiet", "--resume"], check=True, capture_output=True)
    resumed = losses(log)
    assert resumed == reference, f"killed after {killed_at} steps; resumed losses differ"
