"""One Model used from 8 Python threads gives the same results as from one thread."""
import threading

import numpy as np
import pytest

from conftest import FIXTURES

TEXTS = [f"text number {i}: " + "lighthouse " * (i % 7) for i in range(24)]


def run_threads(work, n):
    """Runs work(k) for k in 0..n-1 on n threads at once and waits for all."""
    ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def test_threads_identical(model):
    want = model.encode(TEXTS, batch_size=8)
    want_h = model.hidden_states("threads and lamps")
    results, errors = [None] * 8, []

    def work(k):
        try:
            out = []
            for _ in range(2):
                out.append((model.encode(TEXTS, batch_size=8), model.hidden_states("threads and lamps"),
                            model.tokenize("threads and lamps")))
            results[k] = out
        except Exception as e:  # pragma: no cover
            errors.append(e)

    run_threads(work, 8)
    assert not errors, errors
    for out in results:
        for emb, h, ids in out:
            np.testing.assert_array_equal(emb, want)
            np.testing.assert_array_equal(h, want_h)
            assert ids == model.tokenize("threads and lamps")


def test_close_waits_for_calls(model_path):
    import ullme
    m = ullme.Model(model_path)
    stop = threading.Event()
    errs = []

    def spin():
        while not stop.is_set():
            try:
                m.encode(TEXTS[:4])
            except ullme.Error as e:
                if e.status != ullme._lib.E_STATE:
                    errs.append(e)
                return

    ts = [threading.Thread(target=spin) for _ in range(4)]
    for t in ts:
        t.start()
    m.close()
    stop.set()
    for t in ts:
        t.join()
    assert not errs


# Calls of several kinds; each thread runs all of them in its own order and compares every result, bit for
# bit, with the same call made on one thread beforehand (like with like: a text's embedding may differ in
# the last bits between batch compositions, see docs/RELIABILITY.md).
CALLS = [
    ("batch", lambda m: m.encode(TEXTS, batch_size=8)),
    ("batch-query-instruction", lambda m: m.encode(TEXTS[:12], instruction="Retrieve the passage", batch_size=4)),
    ("batch-candidates", lambda m: m.encode(TEXTS[12:], is_query=False, instruction="Retrieve the passage")),
    ("one-text-a", lambda m: m.encode(TEXTS[3])),
    ("one-text-b", lambda m: m.encode(TEXTS[17], is_query=False, instruction="x")),
    ("unnormalised", lambda m: m.encode(TEXTS[:5], normalize=False, batch_size=1)),
    ("logits", lambda m: m.logits("threads and lamps")),
    ("tokenize", lambda m: np.asarray(m.tokenize(TEXTS[20]))),
]


@pytest.fixture(scope="module")
def tiny(lib):
    """Tests/fixtures/tiny-llama: the same code paths as a real model, fast enough for many calls."""
    import ullme
    m = ullme.Model(str(FIXTURES / "tiny-llama"))
    yield m
    m.close()


def test_threads_mixed_calls_bit_identical(tiny):
    import random
    model = tiny
    want = {name: f(model) for name, f in CALLS}
    mismatches, errors = [], []

    def work(k):
        order = list(CALLS) * 2
        random.Random(k).shuffle(order)
        try:
            for name, f in order:
                got = f(model)
                if got.shape != want[name].shape or got.tobytes() != want[name].tobytes():
                    mismatches.append((k, name))
        except Exception as e:  # pragma: no cover
            errors.append(e)

    run_threads(work, 8)
    assert not errors, errors
    assert not mismatches, mismatches


def test_calls_release_the_gil(tiny):
    """While one thread is inside a long libullme call, another Python thread keeps running: ctypes releases
    the GIL around foreign calls (CDLL, not PyDLL). Measured as the longest pause of a counting loop."""
    import time
    model = tiny
    # Enough work for a call of >= 0.2 s on this machine (doubling the texts until it is), so a held GIL shows.
    long_texts = ["lighthouse keeper " * 100 + str(i) for i in range(64)]
    while True:
        t0 = time.perf_counter()
        model.encode(long_texts, batch_size=64)
        call = time.perf_counter() - t0
        if call >= 0.2 or len(long_texts) >= 4096:
            break
        long_texts = long_texts * 2

    done = threading.Event()
    th = threading.Thread(target=lambda: (model.encode(long_texts, batch_size=64), done.set()))
    ticks, max_gap = 0, 0.0
    last = time.perf_counter()
    th.start()
    while not done.is_set():
        now = time.perf_counter()
        max_gap = max(max_gap, now - last)
        last = now
        ticks += 1
    th.join()
    # With the GIL held for the call, the loop would stop for the whole call (`call` seconds).
    assert call > 0.05, f"the call is too short to measure ({call:.3f} s)"
    assert max_gap < call / 2, f"the main thread paused {max_gap:.3f} s during a {call:.3f} s call"
    assert ticks > 1000
    print(f"GIL: call {call:.3f} s, longest pause of the other thread {max_gap * 1000:.1f} ms, {ticks} iterations")


def test_forked_child_embeds(model):
    """A child forked after the engine's worker threads started (they do not survive fork) starts its own."""
    import os
    import signal
    import warnings
    want = model.encode(TEXTS[:4], batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a threaded process
        pid = os.fork()
    if pid == 0:  # child: must finish (not hang on absent workers) and agree bit for bit
        signal.alarm(120)
        try:
            got = model.encode(TEXTS[:4], batch_size=4)
            os._exit(0 if np.array_equal(got, want) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
