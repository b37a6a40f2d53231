"""Bad inputs raise ullme.Error carrying the status and the library's message; nothing crashes."""
import shutil

import pytest

import ullme
from ullme import _lib as L


def err(fn, *a, **kw):
    with pytest.raises(ullme.Error) as ei:
        fn(*a, **kw)
    e = ei.value
    assert e.message and isinstance(e.status, int)
    return e


def test_missing_file(lib, tmp_path):
    p = tmp_path / "nope.gguf"
    e = err(ullme.Model, str(p))
    assert e.status == L.E_IO and "nope.gguf" in str(e)


def test_wrong_magic(lib, tmp_path):
    p = tmp_path / "bad.gguf"
    p.write_bytes(b"NOPE" + b"\0" * 4096)
    assert err(ullme.Model, str(p)).status == L.E_FORMAT


def test_truncated_gguf(model_path, tmp_path):
    p = tmp_path / "trunc.gguf"
    with open(model_path, "rb") as f:
        p.write_bytes(f.read(1 << 20))
    assert err(ullme.Model, str(p)).status == L.E_FORMAT
    p.write_bytes(open(model_path, "rb").read(24))  # inside the header
    assert err(ullme.Model, str(p)).status == L.E_FORMAT


def test_empty_file_and_directory(lib, tmp_path):
    p = tmp_path / "empty.gguf"
    p.write_bytes(b"")
    assert err(ullme.Model, str(p)).status in (L.E_FORMAT, L.E_IO)
    assert err(ullme.Model, str(tmp_path)).status in (L.E_FORMAT, L.E_IO)


def test_bad_names(model_path):
    e = err(ullme.Model, model_path, pooling="median")
    assert e.status == L.E_ARG and "median" in e.message
    e = err(ullme.Model, model_path, attention="sideways")
    assert e.status == L.E_ARG and "sideways" in e.message
    assert err(ullme.Model, model_path, pooling=3).status == L.E_ARG


@pytest.mark.parametrize("kw", [dict(max_length=0), dict(max_length=-5), dict(threads=-1),
                                dict(batch_size=0), dict(max_length=2**40), dict(max_length="8")])
def test_bad_params(model_path, kw):
    assert err(ullme.Model, model_path, **kw).status == L.E_ARG


def test_bad_call_inputs(model):
    assert err(model.encode, [1, 2]).status == L.E_ARG
    assert err(model.encode, ["a"], batch_size=0).status == L.E_ARG
    assert err(model.hidden_states_ids, []).status == L.E_ARG
    assert err(model.hidden_states_ids, [model.info["vocab_size"]]).status == L.E_ARG
    assert err(model.hidden_states_ids, [-1]).status == L.E_ARG
    assert err(model.hidden_states_ids, [1], "nope").status == L.E_ARG
    assert err(model.hidden_states_ids, [0] * (model.info["max_positions"] + 1)).status == L.E_ARG
    assert err(model.logits_ids, [2**33]).status == L.E_ARG
    assert err(model.detokenize, [-5]).status == L.E_ARG


def test_library_not_found(monkeypatch, tmp_path):
    monkeypatch.setattr(L, "_lib", None)
    monkeypatch.setattr(L, "candidate_paths", lambda: [tmp_path / "libullme.so"])
    monkeypatch.setattr(L.ctypes.util, "find_library", lambda name: None)
    e = err(L.lib)
    assert e.status == L.E_IO and str(tmp_path) in e.message
