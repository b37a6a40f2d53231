"""A run read back from an earlier evaluation instead of re-embedded: its per-query arrays
(OUT/per_query/<task>/<system>.npz) and the task description in OUT/results.json.

Used where a row (or one seed of it) was already evaluated on the same tasks, e.g. the base and MiniLM rows
of the default model's evaluation in a later experiment. The task must match exactly: kind, instruction,
sizes, and the query ids (retrieval) or gold scores (STS) in the same order; otherwise it is an error, never
a silent mix of two different evaluations.
"""
import json
import os

import numpy as np

from .cache import safe_name
from .metrics import RETRIEVAL_METRICS


class SavedRun:
    """spec: {"dir": earlier --out, "system": its row name, "seed_index": which of its seeds (0)}."""

    def __init__(self, dir, system, seed_index=0):
        self.dir, self.system, self.seed_index = os.fspath(dir), system, int(seed_index)
        path = os.path.join(self.dir, "results.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing (saved runs read an earlier eval_suite --out)")
        with open(path, encoding="utf-8") as f:
            self.tasks = json.load(f)["tasks"]

    def unit_values(self, task):
        where = f"saved run {self.system!r} seed {self.seed_index} of {self.dir}"
        saved = self.tasks.get(task.name)
        if saved is None or self.system not in saved["systems"]:
            raise ValueError(f"{where}: has no results on task {task.name}")
        now = task.describe()
        for key in now:
            if key != "path" and saved.get(key) != now[key]:
                raise ValueError(f"{where}: task {task.name} differs: {key} {saved.get(key)!r} there, {now[key]!r} here")
        with np.load(os.path.join(self.dir, "per_query", safe_name(task.name), safe_name(self.system) + ".npz")) as z:
            arrays = {k: z[k] for k in z.files}
        if task.kind == "retrieval":
            if list(arrays["query_ids"]) != list(task.query_ids):
                raise ValueError(f"{where}: task {task.name}: the query ids differ")
            names = RETRIEVAL_METRICS
        else:
            if not np.array_equal(arrays["gold"], task.gold):
                raise ValueError(f"{where}: task {task.name}: the gold scores differ")
            names = ["cosine"]
        out = {}
        for m in names:
            a = arrays[m.replace("@", "_at_")]
            if self.seed_index >= a.shape[0]:
                raise ValueError(f"{where}: the row has {a.shape[0]} seeds")
            out[m] = a[self.seed_index].astype(np.float64)
        return out

    def close(self):
        pass
