"""One Model used from 8 Python threads gives the same results as from one thread."""
import threading

import numpy as np

TEXTS = [f"text number {i}: " + "lighthouse " * (i % 7) for i in range(24)]


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

    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
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
