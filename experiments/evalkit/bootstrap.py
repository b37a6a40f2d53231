"""Bootstrap confidence intervals (percentile, 95 %, 1,000 resamples by default, fixed seeds).

A row's value is the mean over its seeds of the task statistic (mean per-query metric, or Spearman over the
pairs). One replicate resamples the units (queries or pairs) with replacement -- the same draw for every
system of the task -- and, for a system with several seeds, its seeds with replacement (a two-level
bootstrap; with one seed this is the plain bootstrap over units). The replicate is the mean over the drawn
seeds of the statistic on the drawn units.

Paired comparison A vs B: replicate differences A_b - B_b, which share the unit draw b (paired) while each
system's seeds are drawn on their own; verdict "A better" / "B better" when the 95 % CI of the difference
excludes 0, else "no significant difference".
"""
import zlib

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


def _rng(seed, label):
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def unit_draws(n, resamples, seed, task):
    """(resamples, n) unit indices for a task (shared by all systems)."""
    return _rng(seed, "units:" + task).integers(0, n, size=(resamples, n))


def seed_draws(n_seeds, resamples, seed, system):
    """(resamples, n_seeds) seed indices for a system (the same on every task)."""
    return _rng(seed, "seeds:" + system).integers(0, n_seeds, size=(resamples, n_seeds))


def combine(per_seed, seeds):
    """per_seed (n_seeds, resamples): each seed's statistic on each unit draw; seeds (resamples, n_seeds):
    the seed draws. Returns (resamples,): the mean over the drawn seeds."""
    return per_seed[seeds.T, np.arange(per_seed.shape[1])].mean(axis=0)


def ci(replicates, level=LEVEL):
    lo, hi = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def paired(mean_a, reps_a, mean_b, reps_b, names=("A", "B")):
    """The difference mean_a - mean_b, its CI from the paired replicates and the verdict."""
    lo, hi = ci(np.asarray(reps_a) - np.asarray(reps_b))
    verdict = f"{names[0]} better" if lo > 0 else f"{names[1]} better" if hi < 0 else "no significant difference"
    return {"diff": float(mean_a - mean_b), "ci": [lo, hi], "verdict": verdict}
