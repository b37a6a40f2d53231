"""Training faults through Python and the CLI: non-finite losses (nonfinite_policy stop|skip) and a
full disk while writing a checkpoint (a tiny tmpfs as output_dir when mount is permitted, else
RLIMIT_FSIZE): a clear error naming the file and errno, the previous checkpoint intact and loadable."""
import json
import os
import resource
import signal
import subprocess
import uuid

import numpy as np
import pytest

import ullme
from conftest import REPO, read_checkpoint, tiny_train_config


def write_config(tmp_path, name, steps, interval=1, extra=""):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(tiny_train_config(REPO, tmp_path / name, steps, interval, extra))
    return cfg, tmp_path / name


def log_lines(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_nonfinite_stop_reports_and_keeps_last_good_checkpoint(tmp_path, lib):
    cfg, out = write_config(tmp_path, "stop", 6, interval=2, extra="inject_nonfinite_steps: [4]")
    records = []
    with pytest.raises(ullme.Error) as e:
        ullme.train(cfg, callback=records.append, show_progress_bar=False)
    assert e.value.status == ullme._lib.E_STATE
    assert "step 4: non-finite loss" in e.value.message and "holds step 3" in e.value.message, e.value.message
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert [r["nonfinite"] for r in records] == [0, 0, 0, 1]
    assert np.isnan(records[3]["loss"])
    meta, _ = read_checkpoint(out / "checkpoint.safetensors")
    assert meta["step"] == "3"
    log = log_lines(out)
    assert log[3]["loss"] is None and log[3]["nonfinite"] == "loss" and log[3]["action"] == "stopped"
    # The checkpoint resumes (skip policy now): the run ends, the log holds each step once.
    cfg.write_text(cfg.read_text() + "nonfinite_policy: skip\n")
    rest = ullme.train(cfg, resume=True, show_progress_bar=False)
    assert [r["step"] for r in rest] == [4, 5, 6] and rest[0]["nonfinite"] == 1
    assert [r["step"] for r in log_lines(out)] == [1, 2, 3, 4, 5, 6]
    assert read_checkpoint(out / "checkpoint.safetensors")[0]["step"] == "6"


def test_nonfinite_skip_from_a_diverging_learning_rate(tmp_path, cli):
    # No injection: lr 1e30 without clipping makes the embeddings non-finite after step 2.
    cfg, out = write_config(tmp_path, "lr", 5, extra="learning_rate: 1.0e+30\ngrad_norm_clip: 0\nnonfinite_policy: skip")
    p = subprocess.run([str(cli), "train", str(cfg), "--quiet"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    log = log_lines(out)
    skipped = [r["step"] for r in log if r.get("action") == "skipped"]
    assert skipped and skipped == list(range(skipped[0], 6)), log
    for s in skipped:
        assert f"ullme: step {s}: non-finite" in p.stderr
    meta, tensors = read_checkpoint(out / "checkpoint.safetensors")
    assert meta["step"] == "5" and int(meta["adam_step"]) == skipped[0] - 1
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


# ---- disk full -------------------------------------------------------------------------------------

def _mount_tmpfs(path, size):
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def _check_after_disk_full(p, out, errno_name):
    assert p.returncode != 0, "the run did not fail"
    err = p.stderr
    assert "I/O error" in err and errno_name in err and str(out) in err, err
    # The message names the file: the checkpoint (write of its temporary file) or the log.
    assert (f"{out}/checkpoint.safetensors:" in err) or (f"{out}/log.jsonl:" in err), err
    meta, _ = read_checkpoint(out / "checkpoint.safetensors")
    assert int(meta["step"]) >= 1
    assert not [f for f in os.listdir(out) if ".tmp-" in f], "a temporary file was left behind"
    return int(meta["step"])


def _checkpoint_size(tmp_path, cli):
    cfg, out = write_config(tmp_path, "probe", 1)
    subprocess.run([str(cli), "train", str(cfg), "--quiet"], check=True, capture_output=True, timeout=300)
    return (out / "checkpoint.safetensors").stat().st_size


def _rlimit_case(cli, cfg, out, ckpt):
    """A run stopped after step 2 (checkpoint written), resumed with RLIMIT_FSIZE below one checkpoint: the
    step-3 checkpoint's temporary file fails with EFBIG; the step-2 checkpoint stays."""
    with pytest.raises(ullme.Error) as e:
        ullme.train(cfg, callback=lambda r: r["step"] < 2, show_progress_bar=False)
    assert e.value.status == ullme._lib.E_CANCELLED
    assert read_checkpoint(out / "checkpoint.safetensors")[0]["step"] == "2"
    p = subprocess.run([str(cli), "train", str(cfg), "--quiet", "--resume"], capture_output=True, text=True, timeout=300,
                       preexec_fn=lambda: (signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
                                           resource.setrlimit(resource.RLIMIT_FSIZE, (ckpt - 1000, ckpt - 1000))))
    assert _check_after_disk_full(p, out, "EFBIG") == 2
    assert f"{out}/checkpoint.safetensors: writing" in p.stderr, p.stderr
    return p


def test_disk_full_tmpfs(tmp_path, cli, lib):
    """A tmpfs a bit larger than one checkpoint as output_dir: the first checkpoint fits, the second
    (temporary file beside the old one) does not: ENOSPC. Where mount is not permitted (not root, no
    CAP_SYS_ADMIN) the RLIMIT_FSIZE case runs instead and the reason is printed."""
    ckpt = _checkpoint_size(tmp_path, cli)
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    size = (ckpt + 64 * 1024) // 4096 * 4096 + 4096   # room for one checkpoint and the log, not two checkpoints
    mounted, why = _mount_tmpfs(mnt, size)
    if not mounted:
        print(f"mount -t tmpfs not permitted ({why}): RLIMIT_FSIZE instead")
        cfg, out = write_config(tmp_path, "fallback", 6)
        _rlimit_case(cli, cfg, out, ckpt)
        return
    try:
        out = mnt / "run"
        cfg = tmp_path / "full.yaml"
        cfg.write_text(tiny_train_config(REPO, out, 6, 1))
        p = subprocess.run([str(cli), "train", str(cfg), "--quiet"], capture_output=True, text=True, timeout=300)
        step = _check_after_disk_full(p, out, "ENOSPC")
        assert step == 1 and f"{out}/checkpoint.safetensors: writing" in p.stderr, p.stderr
        print(f"tmpfs of {size} bytes, checkpoint {ckpt} bytes: {p.stderr.strip().splitlines()[-1]}")
        # Resuming on the full disk fails the same way; the checkpoint is still intact.
        p2 = subprocess.run([str(cli), "train", str(cfg), "--quiet", "--resume"], capture_output=True, text=True, timeout=300)
        assert _check_after_disk_full(p2, out, "ENOSPC") == 1
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_rlimit_fsize(tmp_path, cli, lib):
    ckpt = _checkpoint_size(tmp_path, cli)
    cfg, out = write_config(tmp_path, "fsize", 6)
    p = _rlimit_case(cli, cfg, out, ckpt)
    print(p.stderr.strip().splitlines()[-1])
