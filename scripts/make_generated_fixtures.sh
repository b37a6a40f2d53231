#!/usr/bin/env bash
# Called by `make fixtures` (after `make models`). Checks that the committed parity fixtures exist and
# runs the fixture generators whose outputs are too big to commit or depend on the fetched models.
# Every script that exists must succeed; a missing committed fixture is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
for f in Tests/fixtures/tiny-llama/{config.json,model.safetensors,expected.json} \
         Tests/fixtures/tiny-llama-rope/{config.json,model.safetensors,expected.json} \
         Tests/fixtures/tiny-llama-linear/{config.json,model.safetensors,expected.json} \
         Tests/fixtures/tiny-qwen3/{config.json,model.safetensors,expected.json} \
         Tests/fixtures/smollm2/expected.json; do
    if [ ! -s "$f" ]; then echo "missing committed fixture: $f (run scripts/make_parity_fixtures.py)" >&2; fail=1; fi
done
[ "$fail" = 0 ] || exit 1
echo "committed parity fixtures: present"
# make_embedder_fixtures.py: tiny sentence-transformers and GenC-format models with reference embeddings
# (needs torch, transformers, sentence-transformers; Tests/fixtures/generated/embedders/, ~10 s);
# make_upstream_embedder_fixtures.py: the same GritLM/LLM2Vec models through the gritlm and llm2vec PyPI packages,
# each in a venv under build/venvs (made once from PyPI, ~1 min; Tests/fixtures/generated/upstream/);
# make_family_gguf.py: Tests/fixtures/tiny-qwen3 as a qwen3 GGUF (Tests/fixtures/generated/tiny-qwen3.gguf).
for s in scripts/make_dequant_fixtures.py scripts/make_tokenizer_fixtures.py scripts/make_embedder_fixtures.py \
         scripts/make_upstream_embedder_fixtures.py scripts/make_family_gguf.py; do
    if [ -f "$s" ]; then
        echo "running $s" >&2
        python3 "$s"
    fi
done
echo "generated fixtures: done"
