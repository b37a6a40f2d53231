#!/usr/bin/env python3
"""Reference fixtures for the training building blocks (Tests/ULLMETests/TrainBlocksTests.swift).

Runs the reference implementation's own code where it can: ContrastiveLoss.__init__ (the
pytorch-metric-learning loss/miner/distance objects), PreferenceLoss, KLLoss from ullme/trainer/loss.py
and get_cosine_annealing_schedule_with_warmup from ullme/trainer/utils.py, read from the reference
repository (a git repository; --reference, default the local bare mirror). ContrastiveLoss.__call__
needs torch.distributed with CUDA, so its single-process body (label construction and concatenation
order) is reproduced below line for line without the all-gathers (world_size = 1).

Requires: torch, pytorch-metric-learning (2.9.0 used), einops. Deterministic (fixed seeds).
Losses and gradients are computed in float64 from float32-representable inputs (the float32 run is
checked to agree, including the miner's pair selection, which is done on float32 inputs in the
reference); AdamW / clipping run in float32 as in training.

Writes Tests/fixtures/train_blocks/{contrastive,preference,kl,projection,optim,lora}.json
Usage: python3 scripts/make_train_block_fixtures.py [--reference /path/to/ullme/repo]
"""
import argparse, ast, json, math, os, subprocess, sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "fixtures", "train_blocks")
torch.set_num_threads(1)


def git_show(repo, path):
    return subprocess.check_output(["git", "-C", repo, "show", "HEAD:" + path], text=True)


def load_reference(repo):
    ns = {}
    exec(compile(git_show(repo, "ullme/trainer/loss.py"), "ullme/trainer/loss.py", "exec"), ns)
    # utils.py imports lightning; take only the schedule function's source.
    src = git_show(repo, "ullme/trainer/utils.py")
    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_cosine_annealing_schedule_with_warmup")
    sched_ns = {"torch": torch, "math": math, "LambdaLR": torch.optim.lr_scheduler.LambdaLR}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "utils.py", "exec"), sched_ns)
    ns["get_cosine_annealing_schedule_with_warmup"] = sched_ns["get_cosine_annealing_schedule_with_warmup"]
    return ns


def fl(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print("wrote", os.path.join(OUT, name))


# ---------------------------------------------------------------- contrastive

def reference_call(cl, q, pos, neg, q_labels):
    """ContrastiveLoss.__call__ for world_size 1 (all_gather of one rank = identity)."""
    import einops
    pos_labels = einops.repeat(q_labels, 'b -> b n', n=pos.size(1))
    pos_labels = einops.rearrange(pos_labels, 'b n -> (b n)')
    pos = einops.rearrange(pos, 'b n d -> (b n) d')
    neg = einops.rearrange(neg, 'b n d -> (b n) d')
    max_idx = torch.max(q_labels)
    neg_labels = torch.arange(neg.size(0)) + max_idx + 1
    full_labels = torch.cat([q_labels, pos_labels, neg_labels], dim=0)
    full_embeds = torch.cat([q, pos, neg], dim=0)
    hard = None
    if cl.miner is not None:
        hard = cl.miner(full_embeds, full_labels)
        loss = cl.loss_fn(full_embeds, full_labels, hard)
    else:
        loss = cl.loss_fn(full_embeds, full_labels)
    return loss * 1, full_labels, hard


def miner_margin(embeds, labels, eps=0.25):
    """Smallest |margin| of the MultiSimilarityMiner's comparisons (to avoid borderline fixtures).
    The reference's miner has no distance argument: it always uses its default CosineSimilarity."""
    x = F.normalize(embeds.double(), p=2, dim=1)
    m = x @ x.T
    is_distance = False
    n = len(labels)
    best = float("inf")
    for i in range(n):
        ps = [j for j in range(n) if j != i and labels[j] == labels[i]]
        ns = [j for j in range(n) if labels[j] != labels[i]]
        if not ps or not ns:
            continue
        if is_distance:
            nmin, pmax = min(m[i, j] for j in ns), max(m[i, j] for j in ps)
            best = min(best, *[abs(m[i, j] + eps - nmin) for j in ps], *[abs(m[i, j] - eps - pmax) for j in ns])
        else:
            nmax, pmin = max(m[i, j] for j in ns), min(m[i, j] for j in ps)
            best = min(best, *[abs(m[i, j] - eps - nmax) for j in ps], *[abs(m[i, j] + eps - pmin) for j in ns])
    return float(best)


def make_contrastive(ref, loss_type, temperature, is_distance, use_miner):
    """The reference's ContrastiveLoss. Its SupConLoss branch passes `base_distance=`, a keyword that
    pytorch-metric-learning does not accept (TypeError), so the reference cannot run SupConLoss; we
    build it with `distance=` (what it evidently means) on top of the reference object."""
    CL = ref["ContrastiveLoss"]
    try:
        return CL(loss_type=loss_type, temperature=temperature, is_distance=is_distance, use_miner=use_miner)
    except TypeError:
        assert loss_type == "SupConLoss"
        from pytorch_metric_learning import losses, distances
        cl = CL(loss_type="NTXentLoss", temperature=temperature, is_distance=is_distance, use_miner=use_miner)
        distance = distances.LpDistance(normalize_embeddings=True) if is_distance else distances.CosineSimilarity()
        cl.loss_fn = losses.SupConLoss(temperature=temperature, distance=distance)
        return cl


def contrastive_fixtures(ref):
    CL = lambda t, T, d, m: make_contrastive(ref, t, T, d, m)
    cases = []
    shapes = [(4, 1, 1, 16, True), (4, 2, 3, 16, True), (3, 1, 2, 8, False), (2, 0, 2, 8, True)]
    for (B, P, N, D, unit) in shapes:
        for loss_type in ["NTXentLoss", "SupConLoss"]:
            for is_distance in [True, False]:
                for use_miner in [False, True]:
                    seed = 1000 * B + 100 * P + 10 * N + D
                    for attempt in range(50):
                        g = torch.Generator().manual_seed(seed + attempt)
                        q = torch.randn(B, D, generator=g)
                        pos = q.unsqueeze(1) + 0.9 * torch.randn(B, P, D, generator=g)
                        neg = torch.randn(B, N, D, generator=g) + 0.3 * q.unsqueeze(1)
                        grouped = torch.cat([q.unsqueeze(1), pos, neg], dim=1)  # trainer layout [B, 1+P+N, D]
                        if unit:
                            grouped = F.normalize(grouped, p=2, dim=-1)  # projected reps are unit vectors
                        else:
                            grouped = grouped * (0.5 + torch.rand(B, 1 + P + N, 1, generator=g))  # exercise re-normalisation
                        grouped = grouped.float()
                        q_labels = torch.randperm(3 * B, generator=g)[:B]
                        labels = None
                        full = torch.cat([grouped[:, 0], grouped[:, 1:1 + P].reshape(-1, D), grouped[:, 1 + P:].reshape(-1, D)])
                        if use_miner:
                            _, labels, _ = reference_call(CL(loss_type, 0.05, is_distance, True), grouped[:, 0], grouped[:, 1:1 + P], grouped[:, 1 + P:], q_labels)
                            if miner_margin(full, labels.tolist()) < 1e-4:
                                continue
                        break
                    out = {}
                    for dtype in [torch.float32, torch.float64]:
                        cl = CL(loss_type, 0.05, is_distance, use_miner)
                        proj = grouped.to(dtype).clone().requires_grad_(True)  # as build_cache: grad w.r.t. [B, 1+P+N, D]
                        if cl.miner is not None:
                            # The reference mines on the float32 reps; keep that selection for the float64 run.
                            _, _, hard32 = reference_call(cl, grouped[:, 0], grouped[:, 1:1 + P], grouped[:, 1 + P:], q_labels)
                            cl.miner = (lambda h: (lambda e, l: h))(hard32)
                        loss, labels, hard = reference_call(cl, proj[:, 0], proj[:, 1:1 + P], proj[:, 1 + P:], q_labels)
                        if loss.requires_grad:
                            loss.backward()
                            grad = proj.grad
                        else:
                            grad = torch.zeros_like(proj)
                        out[dtype] = (loss.detach(), grad.detach(), labels, hard)
                    l32, g32 = out[torch.float32][0].double(), out[torch.float32][1].double()
                    l64, g64, labels, hard = out[torch.float64]
                    assert abs(l32 - l64) <= 1e-4 * max(1.0, abs(float(l64))), (loss_type, l32, l64)
                    assert torch.allclose(g32, g64, rtol=1e-3, atol=1e-5), (loss_type, is_distance, use_miner)
                    if use_miner:
                        from pytorch_metric_learning import distances
                        assert isinstance(make_contrastive(ref, loss_type, 0.05, is_distance, True).miner.distance, distances.CosineSimilarity)
                    npos = len(hard[0]) if hard is not None else None
                    nneg = len(hard[2]) if hard is not None else None
                    cases.append({
                        "name": f"{loss_type}-{'dist' if is_distance else 'cos'}-{'miner' if use_miner else 'all'}-B{B}P{P}N{N}D{D}{'' if unit else '-nonunit'}",
                        "kind": "ntxent" if loss_type == "NTXentLoss" else "supcon",
                        "is_distance": is_distance, "use_miner": use_miner,
                        "B": B, "P": P, "N": N, "D": D,
                        "query_labels": [int(x) for x in q_labels.tolist()],
                        "labels": [int(x) for x in labels.tolist()],
                        "reps_grouped": fl(grouped), "loss": float(l64), "grad_grouped": fl(g64),
                        "mined_pos_pairs": npos, "mined_neg_pairs": nneg,
                    })
    write("contrastive.json", {"temperature": 0.05, "miner_epsilon": 0.25, "cases": cases})


# ---------------------------------------------------------------- preference / sft

def preference_fixtures(ref):
    PL = ref["PreferenceLoss"]
    g = torch.Generator().manual_seed(7)
    B = 6
    cases = []
    chosen = (-40 + 30 * torch.rand(B, generator=g)).float()
    rejected = (-40 + 30 * torch.rand(B, generator=g)).float()
    specs = [("sigmoid", 0.0, chosen, rejected), ("sigmoid", 0.1, chosen, rejected), ("hinge", 0.0, chosen, rejected),
             ("ipo", 0.0, chosen / 20, rejected / 20), ("kto_pair", 0.0, chosen, rejected),
             ("kto_pair", 0.0, chosen + 45, rejected + 38)]  # positive means: the clamp(min=0) KL terms are active
    for (kind, eps, c0, r0) in specs:
        c = c0.double().clone().requires_grad_(True)
        r = r0.double().clone().requires_grad_(True)
        pl = PL(loss_type=kind, reference_free=(kind != "kto_pair"), label_smoothing=eps, beta=0.1)
        if kind == "kto_pair":  # reference-free kto_pair = reference logps 0 (the reference itself passes None and fails)
            losses = pl(c, r, torch.zeros(B, dtype=torch.float64), torch.zeros(B, dtype=torch.float64))
        else:
            losses = pl(c, r)
        loss = losses.mean()  # gradcache_trainer: gen_loss.mean()
        loss.backward()
        cases.append({"kind": kind, "label_smoothing": eps, "beta": 0.1, "chosen": fl(c0), "rejected": fl(r0),
                      "loss": float(loss.detach()), "d_chosen": fl(c.grad), "d_rejected": fl(r.grad)})
    # sft: HF causal-LM loss (mean CE over all label tokens of the batch) vs per-sequence sums / counts.
    S, L, V = 3, 7, 11
    logits = torch.randn(S, L, V, generator=g, dtype=torch.float64)
    labels = torch.randint(0, V, (S, L), generator=g)
    labels[0, 5:] = -100; labels[1, :2] = -100; labels[2, 3] = -100
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    lab = labels[:, 1:].clone(); mask = lab != -100; lab[~mask] = 0
    tok = torch.gather(logits[:, :-1].log_softmax(-1), 2, lab.unsqueeze(2)).squeeze(2)
    sums, counts = (tok * mask).sum(-1), mask.sum(-1)
    sft = {"sum_logps": fl(sums), "token_counts": [int(x) for x in counts.tolist()], "loss": float(ce)}
    write("preference.json", {"cases": cases, "sft": sft})


# ---------------------------------------------------------------- KL

def kl_fixtures(ref):
    KL = ref["KLLoss"]
    g = torch.Generator().manual_seed(11)
    cases = []
    for (B, P, N, D, nan) in [(3, 1, 3, 16, False), (2, 2, 2, 8, False), (2, 1, 1, 8, True)]:
        K = P + N
        reps = F.normalize(torch.randn(B, 1 + K, D, generator=g), dim=-1).float()
        gen = (-3 + 2.5 * torch.rand(B, K, generator=g)).float()
        if nan:
            gen[1, 0] = float("nan")  # a generation example without label tokens: 0/0 token mean
        projections = reps.double().clone().requires_grad_(True)
        query_reps, passage_reps = projections[:, 0], projections[:, 1:]
        dual = torch.cosine_similarity(query_reps.unsqueeze(1), passage_reps, dim=-1)
        dual.retain_grad()
        kl = KL(temperature=0.05)  # GradCacheTrainer: KLLoss(temperature=temperature) with the contrastive T
        loss = kl(dual_scores=dual, gen_scores=gen.double())
        if loss.requires_grad:
            loss.backward()
            d_dual, d_reps = dual.grad, projections.grad
        else:
            d_dual, d_reps = torch.zeros_like(dual), torch.zeros_like(projections)
        cases.append({"B": B, "K": K, "D": D, "temperature": 0.05, "reps_grouped": fl(reps),
                      "gen": [None if math.isnan(x) else x for x in fl(gen)], "dual": fl(dual), "loss": float(loss.detach()),
                      "d_dual": fl(d_dual), "d_reps_grouped": fl(d_reps)})
    write("kl.json", {"cases": cases})


# ---------------------------------------------------------------- projection head, normalise, pooling

def reference_pooling(method, hidden_state, attention_mask):
    """ULLME.pooling (ullme/model/ullme.py), prompt_length None."""
    if method == 'cls':
        return hidden_state[:, 0]
    if method == 'lasttoken':
        b, n, d = hidden_state.size()
        reversed_mask = torch.flip(attention_mask, dims=(1,))
        argmax_reverse = torch.argmax(reversed_mask, dim=1, keepdim=False)
        gather_indices = attention_mask.size(1) - argmax_reverse - 1
        gather_indices = torch.clamp(gather_indices, min=0)
        gather_indices = gather_indices.unsqueeze(-1).repeat(1, d).unsqueeze(1)
        input_mask_expanded = attention_mask.unsqueeze(-1).expand((b, n, d)).to(hidden_state.dtype)
        return torch.gather(hidden_state * input_mask_expanded, 1, gather_indices).squeeze(dim=1)
    if method == 'weightedmean':
        attention_mask = attention_mask * attention_mask.cumsum(dim=1)
    s = torch.sum(hidden_state * attention_mask.unsqueeze(-1).to(hidden_state.dtype), dim=1)
    d = attention_mask.sum(dim=1, keepdim=True).to(hidden_state.dtype)
    return s / d


def projection_fixtures():
    torch.manual_seed(3)
    d, N = 8, 3
    head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), torch.nn.Linear(d, d)).double()
    with torch.no_grad():  # float32-representable weights
        for p in head.parameters():
            p.copy_(p.float().double())
    x = (torch.randn(N, d) * 2).float().double().requires_grad_(True)
    G = torch.randn(N, d).float().double()
    proj = head(x); proj.retain_grad()
    out = F.normalize(proj, p=2, dim=-1)
    (out * G).sum().backward()
    W1, b1, W2, b2 = head[0].weight, head[0].bias, head[2].weight, head[2].bias
    pooling = []
    L, pad = 5, 2
    hidden = torch.randn(1, L + pad, d).float().double()
    mask = torch.tensor([[1] * L + [0] * pad], dtype=torch.long)
    gp = torch.randn(d).float().double()
    for method in ["mean", "weightedmean", "cls", "lasttoken"]:
        h = hidden.clone().requires_grad_(True)
        pooled = reference_pooling(method, h, mask.clone())
        (pooled[0] * gp).sum().backward()
        assert h.grad[0, L:].abs().sum() == 0
        pooling.append({"method": method, "pooled": fl(pooled), "d_hidden": fl(h.grad[0, :L])})
    write("projection.json", {
        "dim": d, "N": N, "w1": fl(W1), "b1": fl(b1), "w2": fl(W2), "b2": fl(b2), "x": fl(x), "g": fl(G),
        "proj": fl(proj), "out": fl(out), "d_proj": fl(proj.grad), "d_x": fl(x.grad),
        "d_w1": fl(W1.grad), "d_b1": fl(b1.grad), "d_w2": fl(W2.grad), "d_b2": fl(b2.grad),
        "pooling": {"L": L, "hidden": fl(hidden[0, :L]), "d_pooled": fl(gp), "cases": pooling}})


# ---------------------------------------------------------------- AdamW + clipping + schedule

def optim_fixtures(ref):
    sched_fn = ref["get_cosine_annealing_schedule_with_warmup"]
    g = torch.Generator().manual_seed(5)
    shapes = [(4, 3), (5,), (2, 2)]
    params = [torch.nn.Parameter(torch.randn(*s, generator=g)) for s in shapes]
    init = [fl(p) for p in params]
    lr, min_lr, wd = 1e-3, 1e-5, 0.01
    steps_per_epoch, max_epochs, warmup_prop = 4, 2, 0.25
    # main.py's derivation
    lr_max_steps = min(10**9, steps_per_epoch * max_epochs)
    num_epochs = lr_max_steps // steps_per_epoch if lr_max_steps // steps_per_epoch > 0 else 1
    warmup_steps = min(warmup_prop * steps_per_epoch, 500)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=(0.9, 0.999), foreach=False)
    sched = sched_fn(opt, num_warmup_steps=warmup_steps, num_training_steps=lr_max_steps,
                     num_cycles=num_epochs, min_reduce_rate=min_lr / lr)
    steps = []
    for s in range(lr_max_steps):
        grads = [torch.randn(*p.shape, generator=g) * (0.2 + 1.5 * (s % 3)) for p in params]
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        used_lr = opt.param_groups[0]["lr"]
        total = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        clipped = [fl(p.grad) for p in params]
        opt.step(); opt.zero_grad(); sched.step()
        steps.append({"grads": [fl(x) for x in grads], "lr": used_lr, "total_norm": float(total),
                      "clipped": clipped, "params": [fl(p) for p in params]})
    # Schedule tables (lr of the optimiser step after s scheduler steps, s = 0...).
    tables = []
    for (spe, epochs, prop, anneal, lr_, mlr, max_steps) in [(40, 3, 0.05, True, 1e-4, 1e-7, 10**9),
                                                           (40, 3, 0.05, False, 1e-4, 1e-7, 10**9),
                                                           (25, 2, 0.1, True, 2e-4, 0.0, 45),
                                                           (12000, 1, 0.05, True, 1e-4, 1e-7, 10**9)]:
        p = torch.nn.Parameter(torch.zeros(1))
        o = torch.optim.AdamW([p], lr=lr_)
        total_ = min(max_steps, spe * epochs)
        ne = total_ // spe if total_ // spe > 0 else 1
        sc = sched_fn(o, num_warmup_steps=min(prop * spe, 500), num_training_steps=total_,
                      num_cycles=ne if anneal else 1, min_reduce_rate=mlr / lr_)
        probe = sorted(set(list(range(0, min(total_ + 3, 130))) + [499, 500, 501, 5000, total_ - 1, total_, total_ + 1]))
        lrs = {}
        for s in range(max(probe) + 1):
            if s in probe:
                lrs[s] = o.param_groups[0]["lr"]
            o.step(); sc.step()
        tables.append({"lr": lr_, "min_lr": mlr, "warmup_proportion": prop, "steps_per_epoch": spe,
                       "max_epochs": epochs, "max_steps": max_steps, "cosine_annealing": anneal,
                       "steps": probe, "lrs": [lrs[s] for s in probe]})
    write("optim.json", {"shapes": [list(s) for s in shapes], "init": init, "lr": lr, "min_lr": min_lr,
                         "weight_decay": wd, "steps_per_epoch": steps_per_epoch, "max_epochs": max_epochs,
                         "warmup_proportion": warmup_prop, "max_norm": 1.0, "steps": steps, "schedules": tables})


# ---------------------------------------------------------------- LoRA

def lora_fixtures():
    g = torch.Generator().manual_seed(9)
    In, Out, r, alpha, T, p = 6, 5, 4, 8.0, 3, 0.25
    W = torch.randn(Out, In, generator=g).double()
    A = torch.empty(r, In).double()
    torch.manual_seed(9)
    torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))  # PEFT's lora_A init
    A = A.float().double()
    B = (0.1 * torch.randn(Out, r, generator=g)).float().double()  # non-zero so dA is informative
    x0 = torch.randn(T, In, generator=g).float().double()
    G = torch.randn(T, Out, generator=g).float().double()
    keep = (torch.rand(T, In, generator=g) >= p).double()
    cases = []
    for mask in [None, keep / (1 - p)]:
        a_ = A.clone().requires_grad_(True); b_ = B.clone().requires_grad_(True); x = x0.clone().requires_grad_(True)
        xd = x if mask is None else x * mask
        y = x @ W.T + (alpha / r) * (xd @ a_.T) @ b_.T
        (y * G).sum().backward()
        cases.append({"mask": None if mask is None else fl(mask), "y": fl(y), "d_a": fl(a_.grad), "d_b": fl(b_.grad), "d_x": fl(x.grad)})
    write("lora.json", {"in": In, "out": Out, "rank": r, "alpha": alpha, "dropout": p, "T": T,
                        "w": fl(W), "a": fl(A), "b": fl(B), "x": fl(x0), "g": fl(G),
                        "kaiming_bound": 1 / math.sqrt(In), "cases": cases})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default="/work/.mirror/nlp-uoregon+ullme/repo")
    args = ap.parse_args()
    ref = load_reference(args.reference)
    contrastive_fixtures(ref)
    preference_fixtures(ref)
    kl_fixtures(ref)
    projection_fixtures()
    optim_fixtures(ref)
    lora_fixtures()


if __name__ == "__main__":
    main()
