"""Outputs: results.json, per-query arrays (per_query/<task>/<system>.npz), table.md and gap_closed.png."""
import json
import os

import numpy as np

from .cache import safe_name
from .runner import METRICS, PRIMARY

LABEL = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "recall@10": "R@10", "spearman": "Spearman", "pearson": "Pearson"}


def fmt(m, digits=4):
    """"0.1234 [0.1000, 0.1500]" for {"mean", "ci"}; "-" for None."""
    if m is None:
        return "-"
    return f"{m['mean']:.{digits}f} [{m['ci'][0]:.{digits}f}, {m['ci'][1]:.{digits}f}]"


def save_per_query(out, tasks, values):
    """per_query/<task>/<system>.npz: the unit ids and each per-seed array (n_seeds, n_units); STS adds gold."""
    paths = {}
    by_name = {t.name: t for t in tasks}
    for (task, system), v in values.items():
        t = by_name[task]
        path = os.path.join(out, "per_query", safe_name(task), safe_name(system) + ".npz")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        extra = {"query_ids": np.array(t.query_ids)} if t.kind == "retrieval" else {"gold": t.gold}
        np.savez(path, **extra, **{k.replace("@", "_at_"): a for k, a in v.items()})
        paths[(task, system)] = os.path.relpath(path, out)
    return paths


def results_json(settings, tasks, systems, results, means, comparisons, gap, per_query_paths):
    doc = {"settings": settings, "tasks": {}, "comparisons": comparisons, "gap_closed": gap}
    for t in tasks:
        doc["tasks"][t.name] = {**t.describe(), "primary": PRIMARY[t.kind], "systems": {
            s: {**r, "per_query": per_query_paths[(t.name, s)]} for s, r in results[t.name].items()}}
    doc["retrieval_mean_ndcg@10"] = {s: {"mean": m["mean"], "ci": m["ci"]} for s, m in means.items()}
    doc["systems"] = [{"name": s.name, "kind": s.kind, "runs": s.runs, "seeds": s.seed_labels,
                       "query_instruction": s.query_instruction, "doc_instruction": s.doc_instruction} for s in systems]
    return doc


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(settings, tasks, systems, results, means, comparisons, gap):
    retrieval = [t for t in tasks if t.kind == "retrieval"]
    header = ["system", "seeds"] + [f"{t.name} {LABEL[PRIMARY[t.kind]]}" for t in tasks]
    if retrieval:
        header.append(f"mean nDCG@10 ({len(retrieval)} retrieval tasks)")
    rows = []
    for s in systems:
        row = [s.name, str(len(s.runs))]
        row += [fmt(results[t.name][s.name]["metrics"][PRIMARY[t.kind]]) if s.name in results[t.name] else "-"
                for t in tasks]
        if retrieval:
            row.append(fmt(means.get(s.name)))
        rows.append(row)
    lines = ["# Evaluation suite", "", *_table(header, rows), "",
             f"Mean [95 % bootstrap percentile CI], {settings['resamples']} resamples (seed {settings['seed']}) over "
             "queries (retrieval) or pairs (STS); a row with several seeds is the mean over its seeds and its CI "
             "resamples seeds and queries. The retrieval mean averages the tasks (tasks resampled independently)."]
    for t in tasks:
        ms = METRICS[t.kind]
        info = t.describe()
        size = f"{info['queries']} queries, {info['documents']} documents" if t.kind == "retrieval" else f"{info['pairs']} pairs"
        lines += ["", f"## {t.name} ({t.kind}: {size})", "", f"Instruction: \"{t.instruction}\"", ""]
        lines += _table(["system"] + [LABEL[m] for m in ms],
                        [[s] + [fmt(r["metrics"][m]) for m in ms] for s, r in results[t.name].items()])
    if comparisons:
        lines += ["", "## Paired comparisons", "",
                  "Difference of means A - B with a paired bootstrap CI (the same resampled queries/pairs for both; "
                  "seeds resampled within each system); the verdict holds when the 95 % CI excludes 0 (no "
                  "correction for the number of comparisons).", ""]
        rows, kinds = [], {t.name: t.kind for t in tasks}
        for c in comparisons:
            for t, d in c["tasks"].items():
                m = PRIMARY[kinds[t]]
                rows.append([f"{c['a']} vs {c['b']}", t, LABEL[m], _diff(d[m]), d[m]["verdict"]])
            if "retrieval_mean" in c:
                d = c["retrieval_mean"]
                rows.append([f"{c['a']} vs {c['b']}", "mean of retrieval tasks", "nDCG@10", _diff(d), d["verdict"]])
        lines += _table(["comparison", "task", "metric", "A - B [95 % CI]", "verdict"], rows)
    if gap:
        names = [t.name for t in retrieval]
        lines += ["", "## Gap closed", "",
                  f"(model - {gap['base']}) / ({gap['reference']} - {gap['base']}) of nDCG@10: 0 = no better than "
                  f"{gap['base']}, 1 = as good as {gap['reference']}.", ""]
        rows = [[m] + [_num(g["tasks"].get(t)) for t in names] + [_num(g["mean"])] for m, g in gap["models"].items()]
        lines += _table(["model"] + names + ["mean"], rows)
    lines += ["", f"Command: `{settings['command']}`; {settings['date']}."]
    return "\n".join(lines) + "\n"


def _diff(d):
    return f"{d['diff']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]"


def _num(x):
    return "-" if x is None else f"{x:.3f}"


def plot_gap(gap, path):
    """Bars of the gap closed per retrieval task and their mean, one colour per model; lines at 0 and 1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(gap["models"])
    labels = list(dict.fromkeys(t for g in gap["models"].values() for t in g["tasks"])) + ["mean"]
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(labels), 3.6))
    for i, m in enumerate(models):
        g = gap["models"][m]
        ys = [g["tasks"].get(t) for t in labels[:-1]] + [g["mean"]]
        ax.bar(np.arange(len(labels)) + (i - (len(models) - 1) / 2) * width,
               [np.nan if y is None else y for y in ys], width, label=m)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="gray", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set_ylabel(f"gap closed ({gap['base']} = 0, {gap['reference']} = 1)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(out, settings, tasks, systems, results, values, means, comparisons, gap):
    os.makedirs(out, exist_ok=True)
    paths = save_per_query(out, tasks, values)
    doc = results_json(settings, tasks, systems, results, means, comparisons, gap, paths)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    table = markdown(settings, tasks, systems, results, means, comparisons, gap)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table)
    if gap:
        plot_gap(gap, os.path.join(out, "gap_closed.png"))
    return doc, table
