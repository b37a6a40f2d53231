#!/usr/bin/env bash
# Evaluate the base model (default SmolLM2-135M-Instruct GGUF, mean pooling) with bidirectional and
# causal attention on the man-page retrieval set and on Lee STS; writes one JSON per run and a
# Markdown table to OUT (default build/results/base).
#
#   scripts/eval_base.sh            # full man-page set (1,098 documents, 1,048 queries) + Lee
#   scripts/eval_base.sh --tiny     # CI: 200-document man-page set + Lee
#
# Needs: build/bin/ullme (make) or ULLME_BIN; apt-get install manpages manpages-dev; pip download access
# to the gensim wheel once (cached in ~/.cache/ullme/pypi). Extra arguments after -- go to `ullme eval`
# (e.g. -- --model other.gguf --threads 2).
set -euo pipefail
cd "$(dirname "$0")/.."
tiny=0; out=build/results/base; extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tiny) tiny=1; shift ;;
        --out) out="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "usage: $0 [--tiny] [--out DIR] [-- ullme-eval-options]" >&2; exit 2 ;;
    esac
done
bin="${ULLME_BIN:-build/bin/ullme}"
[ -x "$bin" ] || { echo "eval_base: $bin not found: run make (or set ULLME_BIN)" >&2; exit 1; }
if [ "$tiny" = 1 ]; then mp=data/eval/manpages-tiny; python3 scripts/data/build_manpages_eval.py --limit 200 --out "$mp"
else mp=data/eval/manpages; python3 scripts/data/build_manpages_eval.py --out "$mp"; fi
python3 scripts/data/build_lee_sts.py --out data/eval/lee
mkdir -p "$out"
name=$(basename "$mp")
for att in bidirectional causal; do
    "$bin" eval --no-adapter --task retrieval --data "$mp" --attention "$att" --pooling mean --output "$out/$name-$att.json" "${extra[@]}"
    "$bin" eval --no-adapter --task sts --data data/eval/lee --attention "$att" --pooling mean --output "$out/lee-$att.json" "${extra[@]}"
done
python3 - "$out" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
rows = ["| model | attention | pooling | %s nDCG@10 | MRR@10 | R@1 | R@10 | R@100 | MAP | Lee Spearman | Lee Pearson | date |" % name,
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
for att in ("bidirectional", "causal"):
    r = json.load(open(f"{out}/{name}-{att}.json")); s = json.load(open(f"{out}/lee-{att}.json"))
    m = r["metrics"]
    rows.append("| %s | %s | %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %s |" % (
        r["model"].rsplit("/", 1)[-1], att, r["pooling"], m["ndcg@10"], m["mrr@10"], m["recall@1"], m["recall@10"],
        m["recall@100"], m["map"], s["metrics"]["spearman"], s["metrics"]["pearson"], r["date"][:10]))
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
