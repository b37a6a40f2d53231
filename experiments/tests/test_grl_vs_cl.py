"""experiments/grl_vs_cl.py: each arm is the default recipe with only its loss keys changed (equal steps,
batch, tokens, data, schedule), and the evaluation spec pools each arm's recorded seeds, reads back the rows
an earlier evaluation holds, and compares every arm with CL and with the base model."""
import json

import grl_vs_cl as exp

SAME_FOR_EVERY_ARM = {"seed", "output_dir"}


def test_arms_differ_from_the_recipe_only_in_their_loss():
    recipe = exp.recipe()
    assert recipe["use_gen"] is False and recipe["use_kl"] is False  # the recipe is the CL arm
    for arm, overrides in exp.ARMS.items():
        cfg = exp.arm_config(arm, 778)
        changed = {k for k in set(cfg) | set(recipe) if cfg.get(k) != recipe.get(k)}
        assert changed <= set(overrides) | SAME_FOR_EVERY_ARM, (arm, changed)
        for key in ("max_steps", "global_batch_size", "max_seq_length", "data", "learning_rate", "gc_chunk_size"):
            assert cfg[key] == recipe[key], (arm, key)
        assert cfg["seed"] == 778 and cfg["output_dir"] == f"{exp.RUNS}/{exp.run_name(arm, 778)}/run"
    assert exp.ARMS["GRL"] == {"use_gen": True, "gen_loss_type": "sigmoid", "beta": 0.1, "use_kl": True}
    assert exp.ARMS["CL+SFT"]["gen_loss_type"] == "sft" and not exp.ARMS["CL+SFT"].get("use_kl")


def test_the_shipped_default_is_the_cl_arm_at_the_recipe_seed():
    seed = exp.recipe()["seed"]
    assert exp.is_shipped_default("CL", seed) and not exp.is_shipped_default("GRL", seed)
    assert not exp.is_shipped_default("CL", seed + 1)


def test_systems_spec_pools_recorded_seeds(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(exp, "ROOT", str(tmp_path))
    monkeypatch.setattr(exp, "recipe", lambda: {"seed": 777})
    for name in ("grl-s777", "grl-s778", "cl-s778", "cl-sft-s5", "grl-notes"):
        (tmp_path / exp.RECORD / "runs" / name).mkdir(parents=True)
    for name in ("grl-s777", "cl-s778", "cl-sft-s5"):  # grl-s778's adapter is not on this machine
        (tmp_path / exp.RUNS / name / "export").mkdir(parents=True)
    out = f"{exp.RECORD}/eval"
    spec = exp.systems_spec(out)
    assert "GRL seed 778 left out of the evaluation" in capsys.readouterr().err
    rows = {s["name"]: s for s in spec["systems"]}
    assert list(rows) == ["base", "MiniLM", "BM25", "CL", "CL+SFT", "GRL"]
    for name in ("base", "MiniLM", "BM25"):
        assert rows[name]["saved"] == {"dir": exp.DEFAULT_EVAL, "system": name, "seed_index": 0}
    cl = rows["CL"]["seeds"]
    assert [s["seed"] for s in cl] == [777, 778]
    assert cl[0]["saved"]["system"] == exp.DEFAULT_ROW and cl[1]["adapter"] == f"{exp.RUNS}/cl-s778/export"
    assert [s["seed"] for s in rows["CL+SFT"]["seeds"]] == [5] and [s["seed"] for s in rows["GRL"]["seeds"]] == [777]
    assert spec["compare"] == [["CL+SFT", "CL"], ["GRL", "CL"], ["CL", "base"], ["CL+SFT", "base"], ["GRL", "base"]]

    # A seed already evaluated in `out` is read back from there (also without its adapter).
    (tmp_path / out).mkdir(parents=True)
    (tmp_path / out / "results.json").write_text(json.dumps({"systems": [{"name": "GRL", "seeds": [777, 778]}]}))
    grl = {s["name"]: s for s in exp.systems_spec(out)["systems"]}["GRL"]["seeds"]
    assert grl == [{"seed": 777, "saved": {"dir": out, "system": "GRL", "seed_index": 0}},
                   {"seed": 778, "saved": {"dir": out, "system": "GRL", "seed_index": 1}}]

    # A lever arm is compared with GRL too.
    (tmp_path / exp.RECORD / "runs" / "grl-t0.1-s777").mkdir(parents=True)
    (tmp_path / exp.RUNS / "grl-t0.1-s777" / "export").mkdir(parents=True)
    assert ["GRL-T0.1", "GRL"] in exp.systems_spec(out)["compare"]
