#!/usr/bin/env python3
"""Fixtures for libullme's dequantisation tests (FormatsTests), made with gguf-py (`pip install gguf`).

(a) Tests/fixtures/dequant/ (committed, small; re-run only to regenerate):
    synthetic.gguf  tensors of every supported storage type:
                    - F16 and BF16 holding all 65536 bit patterns (subnormals, inf, NaN, -0 included);
                    - F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 quantised from random data by
                      gguf.quants.quantize ("q.<TYPE>");
                    - Q4_0..Q6_K blocks of random bytes (finite random scales) so every bit of the
                      block layouts is exercised, including the K-quants gguf-py cannot quantise ("r.<TYPE>").
    expected.gguf   for each tensor of synthetic.gguf, an F32 tensor of the same name and shape holding
                    gguf.quants.dequantize of its bytes.
    Tests/fixtures/safetensors/tiny.safetensors  written by the reference `safetensors` package
                    (numpy API): "f32" = arange(12).reshape(3, 4) / 4 as F32, "f16" = the same as F16,
                    "scalar" = F32 shape [] value 7, with __metadata__ {"format": "np"}.
(b) Tests/fixtures/generated/ (gitignored; run by CI before the tests, needs scripts/fetch_models.sh --gemma3):
    <model>.expected.gguf  for each tensor type present in a real model, the smallest tensor of that type,
                           dequantised by gguf.quants.dequantize, as an F32 tensor of the same name.

Usage: python3 scripts/make_dequant_fixtures.py [--synthetic-only | --generated-only]
The model cache is $ULLME_CACHE (default ~/.cache/ullme)/models.
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "fixtures")
CACHE = os.environ.get("ULLME_CACHE") or os.path.expanduser("~/.cache/ullme")
MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]


def write_gguf(path, tensors):
    """tensors: list of (name, array, raw_dtype or None). Quantised arrays are uint8 byte-shaped."""
    w = gguf.GGUFWriter(path, arch="ullme-test")
    for name, arr, raw in tensors:
        if raw is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def random_blocks(rng, qtype, n_blocks):
    """Random bytes for n_blocks blocks of qtype, with every f16 scale replaced by a finite value."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    # byte offsets of the f16 scales inside a block (ggml block_* structs)
    scale_at = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
                Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for off in scale_at:
        vals = (rng.standard_normal(n_blocks) * 0.02).astype(np.float16)
        b[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    return b


def synthetic():
    out = os.path.join(FIXTURES, "dequant")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1234)
    tensors = []  # (name, stored array, raw dtype, expected float32 with logical shape)

    allbits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    tensors.append(("all.F16", allbits.view(np.float16).reshape(256, 256), None,
                    allbits.view(np.float16).astype(np.float32).reshape(256, 256)))
    bf = allbits.view(np.uint8).reshape(256, 512)
    tensors.append(("all.BF16", bf, Q.BF16, dequantize(bf, Q.BF16).reshape(256, 256)))

    rows, cols = 16, 256
    data = (rng.standard_normal((rows, cols)) * 0.5).astype(np.float32)
    data[3, :32] = 0.0  # an all-zero block (scale 0)
    tensors.append(("q.F32", data, None, data.copy()))
    for qt in [Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]:
        qd = quantize(data, qt)
        exp = dequantize(qd, qt).astype(np.float32).reshape(rows, cols)
        if qt == Q.F16:
            tensors.append((f"q.{qt.name}", qd, None, exp))
        else:
            tensors.append((f"q.{qt.name}", qd, qt, exp))

    for qt in [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
        block, _ = gguf.GGML_QUANT_SIZES[qt]
        r, c = 4, 2 * 256  # 2 K-quant blocks or 16 small blocks per row
        raw = random_blocks(rng, qt, r * c // block).reshape(r, -1)
        exp = dequantize(raw, qt).astype(np.float32).reshape(r, c)
        tensors.append((f"r.{qt.name}", raw, qt, exp))

    write_gguf(os.path.join(out, "synthetic.gguf"), [(n, a, raw) for n, a, raw, _ in tensors])
    write_gguf(os.path.join(out, "expected.gguf"), [(n, e, None) for n, _, _, e in tensors])
    for f in ["synthetic.gguf", "expected.gguf"]:
        p = os.path.join(out, f)
        print(f"wrote {p} ({os.path.getsize(p)} bytes)")


def safetensors_fixture():
    from safetensors.numpy import save_file
    out = os.path.join(FIXTURES, "safetensors")
    os.makedirs(out, exist_ok=True)
    x = (np.arange(12, dtype=np.float32) / 4).reshape(3, 4)
    p = os.path.join(out, "tiny.safetensors")
    save_file({"f32": x, "f16": x.astype(np.float16), "scalar": np.array(7, dtype=np.float32)}, p,
              metadata={"format": "np"})
    print(f"wrote {p} ({os.path.getsize(p)} bytes)")


def generated():
    out = os.path.join(FIXTURES, "generated")
    os.makedirs(out, exist_ok=True)
    for m in MODELS:
        src = os.path.join(CACHE, "models", m)
        if not os.path.exists(src):
            sys.exit(f"error: {src} is missing: run scripts/fetch_models.sh --gemma3 first")
        r = gguf.GGUFReader(src)
        smallest = {}
        for t in r.tensors:
            if t.tensor_type not in smallest or t.n_bytes < smallest[t.tensor_type].n_bytes:
                smallest[t.tensor_type] = t
        tensors = []
        for qt, t in sorted(smallest.items(), key=lambda kv: kv[0].value):
            shape = tuple(int(x) for x in reversed(t.shape))  # PyTorch order
            exp = dequantize(np.asarray(t.data), qt).astype(np.float32).reshape(shape)
            tensors.append((t.name, exp, None))
            print(f"  {m}: {qt.name:5s} {t.name} {list(shape)}")
        dst = os.path.join(out, m.replace(".gguf", ".expected.gguf"))
        write_gguf(dst, tensors)
        print(f"wrote {dst} ({os.path.getsize(dst)} bytes)")


if __name__ == "__main__":
    if "--generated-only" not in sys.argv:
        synthetic()
        safetensors_fixture()
    if "--synthetic-only" not in sys.argv:
        generated()
