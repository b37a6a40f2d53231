"""The systems spec: which rows the table has, how each embeds, which pairs to compare.

JSON (or YAML, .yaml/.yml) of the form

    {"systems": [
        {"name": "base", "kind": "ullme"},
        {"name": "CL", "kind": "ullme", "doc_instruction": true,
         "seeds": [{"seed": 1, "adapter": "runs/cl-s1/adapter"}, {"seed": 2, "adapter": "runs/cl-s2/adapter"}]},
        {"name": "MiniLM", "kind": "minilm"},
        {"name": "BM25", "kind": "bm25"}],
     "compare": [["GRL", "CL"]],
     "gap": {"models": ["CL"], "base": "base", "reference": "MiniLM"}}

(a bare list is the "systems" list). kind is "ullme" (default), "minilm" or "bm25". Options, at the top
level or per entry of "seeds" (an entry overrides the top level; no "seeds" = one run):
  ullme   model (GGUF path, default the cached SmolLM2), adapter (PEFT LoRA directory or null), attention
          ("bidirectional"), pooling ("mean"), max_length (512), batch_size (32) -- `ullme eval`'s defaults
  minilm  path (default $ULLME_CACHE/models/all-MiniLM-L6-v2), batch_size
any kind: saved ({"dir": an earlier --out, "system": its row, "seed_index": 0}): that run's per-query
          results are read back instead of computed (evalkit/saved.py; the tasks must match exactly)
and per system: query_instruction (ullme: true, minilm: false), doc_instruction (false: documents are
embedded alone, as `ullme eval` without --corpus-instruction and as the untrained base model is evaluated;
true: as candidates "{instruction}\\nCandidate:\\n{title} {text}"). STS texts get the query format. Relative
paths are relative to the working directory. Unknown keys are errors.
"""
import json
from dataclasses import dataclass

from .encoders import MiniLMEncoder, UllmeEncoder
from .saved import SavedRun

OPTIONS = {"ullme": {"model", "adapter", "attention", "pooling", "max_length", "batch_size", "saved"},
           "minilm": {"path", "batch_size", "saved"}, "bm25": {"saved"}}
SYSTEM_KEYS = {"name", "kind", "seeds", "query_instruction", "doc_instruction"}


@dataclass
class System:
    name: str
    kind: str
    runs: list               # one options dict per seed
    seed_labels: list
    query_instruction: bool
    doc_instruction: bool

    def supports(self, task):
        return self.kind != "bm25" or task.kind == "retrieval"

    def encoders(self, threads=0):
        """One encoder per seed: a SavedRun for a saved run, else the kind's (None for BM25, which needs none)."""
        def encoder(opts):
            if "saved" in opts:
                return SavedRun(**opts["saved"])
            if self.kind == "bm25":
                return None
            cls = UllmeEncoder if self.kind == "ullme" else MiniLMEncoder
            return cls(threads=threads, **opts)
        return [encoder(opts) for opts in self.runs]


def _system(d):
    if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
        raise ValueError(f"systems spec: each system needs a \"name\": {d!r}")
    kind = d.get("kind", "ullme")
    if kind not in OPTIONS:
        raise ValueError(f"system {d['name']}: kind must be one of {sorted(OPTIONS)}, not {kind!r}")
    unknown = set(d) - SYSTEM_KEYS - OPTIONS[kind]
    if unknown:
        raise ValueError(f"system {d['name']}: unknown keys {sorted(unknown)} for kind {kind}")
    top = {k: v for k, v in d.items() if k in OPTIONS[kind]}
    seeds = d.get("seeds") or [{}]
    runs, labels = [], []
    for i, s in enumerate(seeds):
        bad = set(s) - {"seed"} - OPTIONS[kind]
        if bad:
            raise ValueError(f"system {d['name']}: seed entry {i}: unknown keys {sorted(bad)}")
        runs.append({**top, **{k: v for k, v in s.items() if k != "seed"}})
        labels.append(s.get("seed", i))
    if kind == "bm25" and len(runs) > 1:
        raise ValueError(f"system {d['name']}: bm25 is deterministic and takes no seeds")
    instr = kind == "ullme"
    q, doc = d.get("query_instruction", instr), d.get("doc_instruction", False)
    if kind == "minilm" and (q or doc):
        raise ValueError(f"system {d['name']}: MiniLM takes no instruction")
    return System(d["name"], kind, runs, labels, bool(q), bool(doc))


def load_spec(path):
    """(systems, comparisons [(A, B)], gap {"models", "base", "reference"} or None) from a spec file."""
    with open(path, encoding="utf-8") as f:
        if path.endswith((".yaml", ".yml")):
            import yaml
            spec = yaml.safe_load(f)
        else:
            spec = json.load(f)
    if isinstance(spec, list):
        spec = {"systems": spec}
    unknown = set(spec) - {"systems", "compare", "gap"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)}")
    systems = [_system(d) for d in spec.get("systems") or []]
    if not systems:
        raise ValueError(f"{path}: no systems")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate system names in {names}")
    compare = [tuple(c) for c in spec.get("compare", [])]
    gap = spec.get("gap")
    if gap is not None:
        gap = {"models": gap.get("models") or [gap["model"]], "base": gap.get("base", "base"),
               "reference": gap.get("reference", "MiniLM")}
    check_names(names, compare, gap)
    return systems, compare, gap


def check_names(names, compare, gap):
    used = [n for c in compare for n in c] + ([*gap["models"], gap["base"], gap["reference"]] if gap else [])
    for c in compare:
        if len(c) != 2:
            raise ValueError(f"compare entries are [A, B] pairs, not {list(c)}")
    missing = sorted(set(used) - set(names))
    if missing:
        raise ValueError(f"compare/gap name systems that are not in the spec: {missing} (systems: {names})")
