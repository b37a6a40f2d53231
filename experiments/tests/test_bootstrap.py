"""The bootstrap: one seed is the plain bootstrap over units, identical seeds change nothing, seed noise
widens the CI, paired verdicts, determinism."""
import numpy as np

from evalkit import bootstrap
from evalkit.runner import estimate
from evalkit.tasks import RetrievalTask, STSTask

B = 1000


def fake_retrieval(n):
    return RetrievalTask("fake", "-", "", [f"q{i}" for i in range(n)], [""] * n, [], [], {})


def values(per_query):
    """per_query (n_seeds, n) used for all three retrieval metrics."""
    per_query = np.atleast_2d(per_query)
    return {m: per_query for m in ("ndcg@10", "mrr@10", "recall@10")}


def test_single_seed_is_the_plain_bootstrap_over_queries():
    rng = np.random.default_rng(1)
    x = rng.random(300)
    units = bootstrap.unit_draws(300, B, 0, "t")
    summary, reps = estimate(fake_retrieval(300), values(x), units, bootstrap.seed_draws(1, B, 0, "s"))
    plain = x[units].mean(axis=1)
    assert np.allclose(reps["ndcg@10"], plain)
    lo, hi = summary["ndcg@10"]["ci"]
    assert lo < x.mean() < hi and summary["ndcg@10"]["mean"] == x.mean()
    # ~ the normal-theory interval
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert abs((hi - lo) - 2 * 1.96 * se) < 0.2 * 2 * 1.96 * se


def test_identical_seeds_give_the_single_seed_interval_and_seed_noise_widens_it():
    rng = np.random.default_rng(2)
    x = rng.random(200)
    task = fake_retrieval(200)
    units = bootstrap.unit_draws(200, B, 0, "t")
    one, _ = estimate(task, values(x), units, bootstrap.seed_draws(1, B, 0, "s"))
    same, _ = estimate(task, values(np.stack([x, x, x])), units, bootstrap.seed_draws(3, B, 0, "s"))
    assert np.allclose(one["ndcg@10"]["ci"], same["ndcg@10"]["ci"])
    shifted = np.stack([x - 0.1, x, x + 0.1])  # seeds that differ by a constant
    noisy, _ = estimate(task, values(shifted), units, bootstrap.seed_draws(3, B, 0, "s"))
    assert abs(noisy["ndcg@10"]["mean"] - x.mean()) < 1e-12
    assert np.allclose(noisy["ndcg@10"]["per_seed"], shifted.mean(axis=1))
    w = lambda s: s["ndcg@10"]["ci"][1] - s["ndcg@10"]["ci"][0]  # noqa: E731
    assert w(noisy) > 1.5 * w(one)


def test_paired_comparison_verdicts():
    rng = np.random.default_rng(3)
    base = rng.random(300)
    units = bootstrap.unit_draws(300, B, 0, "t")
    task = fake_retrieval(300)

    def run(x, name, n_seeds=1):
        s, r = estimate(task, values(x), units, bootstrap.seed_draws(n_seeds, B, 0, name))
        return s["ndcg@10"]["mean"], r["ndcg@10"]

    better = np.clip(base + 0.02 + rng.normal(0, 0.01, 300), 0, 1)  # small but consistent per query
    assert bootstrap.paired(*run(better, "A"), *run(base, "B"), ("A", "B"))["verdict"] == "A better"
    assert bootstrap.paired(*run(base, "B"), *run(better, "A"), ("B", "A"))["verdict"] == "A better"
    noise = np.clip(base + rng.normal(0, 0.3, 300), 0, 1)
    d = bootstrap.paired(*run(noise, "N"), *run(base, "B"), ("N", "B"))
    assert d["verdict"] == "no significant difference" and d["ci"][0] < 0 < d["ci"][1]
    # pairing matters: the same +0.02 is not significant when compared against independent draws
    unpaired_b = bootstrap.unit_draws(300, B, 1, "other")
    r_b = base[unpaired_b].mean(axis=1)
    m_a, r_a = run(better, "A")
    assert bootstrap.ci(r_a - r_b)[0] < 0 < bootstrap.ci(r_a - r_b)[1]
    # two seeds of A (both better) still beat B
    assert bootstrap.paired(*run(np.stack([better, better + 0.005]), "A2", 2), *run(base, "B"),
                            ("A2", "B"))["verdict"] == "A2 better"


def test_sts_bootstrap_and_determinism():
    rng = np.random.default_rng(4)
    gold = rng.random(150)
    cos = np.stack([gold + rng.normal(0, 0.3, 150), gold + rng.normal(0, 0.3, 150)])
    task = STSTask("sts", "-", "", [("a", "b")] * 150, gold)
    units = bootstrap.unit_draws(150, B, 0, "sts")
    s1, r1 = estimate(task, {"cosine": cos}, units, bootstrap.seed_draws(2, B, 0, "x"))
    s2, r2 = estimate(task, {"cosine": cos}, bootstrap.unit_draws(150, B, 0, "sts"), bootstrap.seed_draws(2, B, 0, "x"))
    assert s1 == s2 and np.array_equal(r1["spearman"], r2["spearman"])
    for m in ("spearman", "pearson"):
        assert s1[m]["ci"][0] < s1[m]["mean"] < s1[m]["ci"][1]
    assert not np.array_equal(units, bootstrap.unit_draws(150, B, 1, "sts"))
