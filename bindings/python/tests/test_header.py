"""The Python constants of ullme._lib equal the enum values of include/ullme.h (they are written out by hand,
as ctypes cannot read a header)."""
import re
from pathlib import Path

from ullme import _lib as L

HEADER = Path(__file__).resolve().parents[3] / "include" / "ullme.h"


def header_values():
    text = HEADER.read_text(encoding="utf-8")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*ULLME_([A-Z0-9_]+)\s*=\s*(-?\d+)", text, re.M)}


def test_enum_constants_match_the_header():
    h = header_values()
    for name in ["POOLING_MEAN", "POOLING_WEIGHTEDMEAN", "POOLING_CLS", "POOLING_LASTTOKEN", "POOLING_AUTO",
                 "ATTENTION_BIDIRECTIONAL", "ATTENTION_CAUSAL", "ATTENTION_AUTO"]:
        assert getattr(L, name) == h[name], name
    assert L.WEIGHTS == {
        None: h["WEIGHTS_DEFAULT"], "dense": h["WEIGHTS_DENSE"], "stored": h["WEIGHTS_STORED"],
        "quantized": h["WEIGHTS_QUANTIZED"]}
    assert L.PRECISIONS == {None: h["PRECISION_DEFAULT"], "exact": h["PRECISION_EXACT"], "bf16": h["PRECISION_BF16"],
                            "int8": h["PRECISION_INT8"]}
    # every value of the two enums has its Python name
    assert len([k for k in h if k.startswith("WEIGHTS_")]) == len(L.WEIGHTS)
    assert len([k for k in h if k.startswith("PRECISION_")]) == len(L.PRECISIONS)


def test_status_codes_match_the_header():
    h = header_values()
    for code, name in L.STATUS_NAMES.items():
        assert h[name.removeprefix("ULLME_")] == code, name
