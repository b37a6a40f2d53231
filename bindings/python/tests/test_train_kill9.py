"""`ullme train` SIGKILLed at random times (seeded) while it writes a checkpoint every step.

A third of the kills fall at a random time, a third 0-3 ms after a step's log line (the checkpoint is written
right after it), a third 0-1 ms after the checkpoint's temporary file appears (inside the write). After
every kill the latest checkpoint in output_dir must parse strictly and hold only finite values, its
step must never go back, and the next trial — a `--resume` of the same output_dir — must load it. A run
that reaches the end is compared with an uninterrupted reference run: same losses for every step (each
logged once), same final parameters, no temporary file left. Then a new round starts in a new output_dir.

    ULLME_KILL9_TRIALS   kills (default 10: the CI version; the documented run uses 60)
    ULLME_KILL9_SEED     random seed of the kill times (default 9)
    ULLME_KILL9_REPORT   a file to which the summary is appended as one JSON line
"""
import json
import os
import random
import signal
import subprocess
import time

import numpy as np

from conftest import REPO, read_checkpoint, tiny_train_config

TRIALS = int(os.environ.get("ULLME_KILL9_TRIALS", "10"))
SEED = int(os.environ.get("ULLME_KILL9_SEED", "9"))
STEPS = 24
RANK = 32          # a ~1.6 MB checkpoint: a longer write, so that more kills land inside it
MAX_DELAY = 0.8    # seconds after the start of a trial (model load + a few steps)


def losses(out):
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())}


def last_logged(out):
    """The step of the last complete line of out/log.jsonl (0 if none)."""
    try:
        data = (out / "log.jsonl").read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.split(b"\n")[:-1]
    return json.loads(lines[-1])["step"] if lines else 0


def temporaries(out):
    return [f for f in os.listdir(out) if ".tmp-" in f] if out.exists() else []


def test_kill9_during_checkpoint_writes(tmp_path, cli):
    def config(name):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(tiny_train_config(REPO, tmp_path / name, STEPS, 1, rank=RANK))
        return cfg, tmp_path / name

    ref_cfg, ref_out = config("reference")
    subprocess.run([str(cli), "train", str(ref_cfg), "--quiet"], check=True, capture_output=True, timeout=600)
    ref_losses = losses(ref_out)
    assert sorted(ref_losses) == list(range(1, STEPS + 1))
    _, ref_tensors = read_checkpoint(ref_out / "checkpoint.safetensors")

    def check_complete(out):
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == list(range(1, STEPS + 1)), "each step logged once"
        assert {r["step"]: r["loss"] for r in log} == ref_losses, "resumed losses differ from the reference"
        meta, tensors = read_checkpoint(out / "checkpoint.safetensors")
        assert meta["step"] == str(STEPS)
        for k, v in ref_tensors.items():
            np.testing.assert_array_equal(tensors[k], v, err_msg=k)
        assert not temporaries(out)

    rng = random.Random(SEED)
    rounds, kills, mid_write, no_checkpoint, resumed_steps = 0, 0, 0, 0, []
    cfg, out = config(f"round{rounds}")
    prev_step = 0
    started = time.time()
    modes = {"random": 0, "log-line": 0, "temp-file": 0}
    while kills < TRIALS:
        if prev_step == STEPS:
            # The checkpoint is the last step's: finish the round (adapter export) rather than spend kills on it.
            p = subprocess.run([str(cli), "train", str(cfg), "--quiet", "--resume"], capture_output=True, text=True, timeout=600)
            assert p.returncode == 0, p.stderr
            check_complete(out)
            rounds += 1
            cfg, out = config(f"round{rounds}")
            prev_step = 0
        stale = last_logged(out)
        err = tmp_path / "stderr.txt"
        with open(err, "wb") as e:
            proc = subprocess.Popen([str(cli), "train", str(cfg), "--quiet", "--resume"], stdout=subprocess.DEVNULL, stderr=e)
        mode = rng.choice(["random", "log-line", "temp-file"])
        if max(prev_step, stale) >= STEPS:
            mode = "random"   # no step ahead to aim at (the last step's line is there, its checkpoint is not)
        modes[mode] += 1
        if mode == "random":
            # At a random time.
            deadline = time.time() + rng.uniform(0.0, MAX_DELAY)
        else:
            # Aimed at a checkpoint write, a step a little ahead. Step k's log line is written just before
            # checkpoint k is encoded and written ("log-line": kill 0-3 ms after it appears); "temp-file":
            # kill 0-1 ms after the checkpoint's temporary file appears (inside the write, or just after it).
            # Lines past the checkpoint left by the previous kill are trimmed and rewritten by this run.
            target = min(max(prev_step, stale) + rng.randint(1, 4), STEPS)
            t_end = time.time() + 30
            while proc.poll() is None and time.time() < t_end and last_logged(out) < target:
                time.sleep(0.0002)
            if mode == "temp-file":
                while proc.poll() is None and time.time() < t_end and not temporaries(out):
                    pass
            deadline = time.time() + rng.uniform(0.0, 0.003 if mode == "log-line" else 0.001)
        try:
            rc = proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            rc = None
        if rc is not None:
            modes[mode] -= 1
            # Not killed: the run reached its end (or failed, e.g. could not load the checkpoint).
            assert rc == 0, f"trial after {kills} kills failed: {err.read_text()}"
            check_complete(out)
            rounds += 1
            cfg, out = config(f"round{rounds}")
            prev_step = 0
            continue
        kills += 1
        if any(f.startswith(".checkpoint.safetensors.tmp-") for f in temporaries(out)):
            mid_write += 1
        ckpt = out / "checkpoint.safetensors"
        if not ckpt.exists():
            no_checkpoint += 1
            assert prev_step == 0
            continue
        meta, _ = read_checkpoint(ckpt)      # parses strictly, all values finite
        step = int(meta["step"])
        assert step >= prev_step, f"the checkpoint went back from step {prev_step} to {step}"
        resumed_steps.append(step)
        prev_step = step
    # Finish the last round by resuming to the end.
    p = subprocess.run([str(cli), "train", str(cfg), "--quiet", "--resume"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    check_complete(out)
    rounds += 1
    summary = {"trials": kills, "seed": SEED, "kill_modes": modes, "rounds_completed_and_matched": rounds, "kills_inside_a_checkpoint_write": mid_write,
               "kills_before_the_first_checkpoint": no_checkpoint, "checkpoint_steps_at_kill": resumed_steps,
               "seconds": round(time.time() - started, 1)}
    print("kill -9:", json.dumps(summary))
    if os.environ.get("ULLME_KILL9_REPORT"):
        with open(os.environ["ULLME_KILL9_REPORT"], "a") as f:
            f.write(json.dumps(summary) + "\n")
