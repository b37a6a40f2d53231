"""Training: a whole GRL run from a YAML config (`ullme.train`), or LoRA adapters + projection head on a
loaded Model, one objective call at a time (`ullme.Trainer`).

    history = ullme.train("examples/grl-wordnet.yaml", callback=lambda rec: print(rec["loss"]))

    t = ullme.Trainer(model, lora_rank=16, learning_rate=1e-4)
    reps = t.embedding_backward([ids_a, ids_b], d_reps)     # GradCache: you supply dLoss/dreps
    loss = t.lm_backward([ids], [labels])                    # causal LM cross-entropy (-100 = ignored)
    lr, grad_norm = t.step()                                 # clip, AdamW, schedule; clears gradients
"""
import ctypes
from ctypes import byref

import numpy as np

from . import _lib as L
from ._lib import Error


def _packed(seqs, name="ids"):
    seqs = [np.ascontiguousarray(np.asarray(s, dtype=np.int32).ravel()) for s in seqs]
    if not seqs:
        raise Error(f"{name}: need at least one sequence", L.E_ARG)
    flat = np.ascontiguousarray(np.concatenate(seqs)) if seqs else np.zeros(0, np.int32)
    lengths = (ctypes.c_size_t * len(seqs))(*[len(s) for s in seqs])
    return flat, lengths, len(seqs)


def _i32(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


def _f32(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


class Trainer:
    """Two ways in:
      Trainer("config.yaml").fit(callback=..., resume=False)  - a whole GRL run from a YAML config (as ullme.train);
      Trainer(model, lora_rank=..., seed=...)                 - LoRA (every attention and MLP linear layer) +
          projection head on a loaded Model, with AdamW and the reference schedule, driven call by call;
          an option left None takes the library's default, the YAML config's (docs/training-config.md).
          activation_checkpointing=True keeps only each layer's input during forward and recomputes the
          layer in backward: a fraction of the activation memory, same gradients, about one more forward.
          base_precision="bf16" runs the frozen base's forward and backward products in bf16 (AVX512_BF16;
          LoRA, head, gradients and AdamW stay float32); base_precision_path says what runs.
    Not thread-safe; the Model must stay open while the Trainer lives."""

    def __init__(self, model, lora_rank=None, lora_alpha=None, lora_dropout=None, seed=None, learning_rate=None,
                 min_learning_rate=None, weight_decay=None, grad_clip=None, warmup_proportion=None,
                 steps_per_epoch=None, max_epochs=None, is_cosine_annealing=None, activation_checkpointing=None,
                 base_precision=None):
        lib = L.lib()
        self._handle = None
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            self.config = model   # a YAML config: use fit()
            return
        self.config = None
        self.model = model
        # None: the library's default (ullme_trainer_default_params, the YAML config's defaults).
        p = lib.ullme_trainer_default_params()
        given = {"lora_rank": (lora_rank, int), "lora_alpha": (lora_alpha, float), "lora_dropout": (lora_dropout, float),
                 "seed": (seed, int), "learning_rate": (learning_rate, float),
                 "min_learning_rate": (min_learning_rate, float), "weight_decay": (weight_decay, float),
                 "grad_clip": (grad_clip, float), "warmup_proportion": (warmup_proportion, float),
                 "steps_per_epoch": (steps_per_epoch, int), "max_epochs": (max_epochs, int),
                 "is_cosine_annealing": (is_cosine_annealing, lambda v: 1 if v else 0),
                 "activation_checkpointing": (activation_checkpointing, lambda v: 1 if v else 0)}
        if base_precision not in (None, "exact", "bf16"):
            raise Error(f"base_precision must be None, 'exact' or 'bf16' (got {base_precision!r})", L.E_ARG)
        given["base_precision"] = (base_precision, L.PRECISIONS.get)
        for field, (value, convert) in given.items():
            if value is not None:
                setattr(p, field, convert(value))
        h = L.trainer_p()
        L.check(lib.ullme_trainer_new(model._handle, byref(p), byref(h)), "ullme_trainer_new")
        self._handle = h
        self.dim = model.dim

    def fit(self, callback=None, resume=False, show_progress_bar=None):
        """Runs the GRL fine-tuning of the YAML config given to the constructor; see ullme.train."""
        if self.config is None:
            raise Error("fit() needs a Trainer made from a YAML config: Trainer('config.yaml').fit()", L.E_STATE)
        return train(self.config, resume=resume, callback=callback, show_progress_bar=show_progress_bar)

    def close(self):
        if getattr(self, "_handle", None):
            L.lib().ullme_trainer_free(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def base_precision_path(self):
        """What the frozen base's products run: "exact", "avx512_bf16" or "exact fallback: <why>"."""
        out = ctypes.c_char_p()
        L.check(L.lib().ullme_trainer_base_precision_path(self._handle, byref(out)), "base_precision_path")
        return out.value.decode()

    @property
    def parameter_count(self):
        n = ctypes.c_int64()
        L.check(L.lib().ullme_trainer_parameter_count(self._handle, byref(n)), "parameter_count")
        return n.value

    def embedding_backward(self, sequences, d_reps, attention="bidirectional", example_ids=None):
        """Forward → pool → proj → normalise, then back-propagate d_reps (n, dim). Returns the reps (n, dim)."""
        ids, lengths, n = _packed(sequences)
        d = np.ascontiguousarray(np.asarray(d_reps, dtype=np.float32))
        if d.size != n * self.dim:
            raise Error(f"d_reps has {d.size} values, {n} sequences of dim {self.dim} need {n * self.dim}", L.E_ARG)
        reps = np.empty((n, self.dim), np.float32)
        ex = None if example_ids is None else (ctypes.c_int64 * n)(*map(int, example_ids))
        L.check(L.lib().ullme_trainer_embedding_backward(self._handle, _i32(ids), lengths, n, ex,
                                                         self.model._parse_attention(attention), _f32(d), d.size,
                                                         _f32(reps), reps.size), "embedding_backward")
        return reps

    def encode(self, sequences, attention="bidirectional"):
        """Projected, normalised reps (n, dim) with the current adapters and head (no dropout)."""
        ids, lengths, n = _packed(sequences)
        reps = np.empty((n, self.dim), np.float32)
        L.check(L.lib().ullme_trainer_encode(self._handle, _i32(ids), lengths, n, self.model._parse_attention(attention),
                                             _f32(reps), reps.size), "encode")
        return reps

    def lm_backward(self, sequences, labels):
        """Mean next-token cross-entropy over labelled tokens (-100 = ignored); accumulates gradients."""
        ids, lengths, n = _packed(sequences)
        lab, lab_lengths, m = _packed(labels, "labels")
        if m != n or list(lab_lengths) != list(lengths):
            raise Error("labels must have the shape of the sequences", L.E_ARG)
        loss = ctypes.c_float()
        L.check(L.lib().ullme_trainer_lm_backward(self._handle, _i32(ids), _i32(lab), lengths, n, byref(loss)),
                "lm_backward")
        return float(loss.value)

    def step(self):
        """Clip, AdamW step at the scheduled rate, clear gradients. Returns (lr, grad_norm)."""
        lr, norm = ctypes.c_double(), ctypes.c_float()
        L.check(L.lib().ullme_trainer_step(self._handle, byref(lr), byref(norm)), "step")
        return lr.value, norm.value


def train(config, resume=False, callback=None, show_progress_bar=None):
    """Runs GRL fine-tuning from a YAML config file (see examples/grl-wordnet.yaml). Every step's losses go to
    `callback(record_dict)` (return False to stop: a checkpoint is written and ullme.Error is raised) and to a
    tqdm progress bar when tqdm is installed (show_progress_bar None = auto). Returns the list of records.
    The adapter is written to <output_dir>/adapter, the JSONL log to <output_dir>/log.jsonl.
    A record with nonfinite == 1 is a step whose loss, gradient norm or update was NaN/inf and was not
    applied; with the config's nonfinite_policy: stop (default) ullme.Error (ULLME_E_STATE) follows it,
    with skip the run continues. A failed checkpoint write (disk full) raises ULLME_E_IO naming the file."""
    import os
    records, bar = [], None
    fields = [f for f, _ in L.TrainLog._fields_]

    def on_step(user, rec):
        r = {f: getattr(rec.contents, f) for f in fields}
        records.append(r)
        nonlocal bar
        if bar is None and show_progress_bar is not False:
            try:
                from tqdm import tqdm
                bar = tqdm(total=r["total_steps"], initial=r["step"] - 1, desc="GRL", unit="step")
            except ImportError:
                bar = False
        if bar:
            bar.set_postfix(loss=f"{r['loss']:.3f}", cl=f"{r['contrastive']:.3f}", gen=f"{r['generative']:.3f}",
                            kl=f"{r['kl']:.3f}")
            bar.update(1)
        if callback is not None and callback(r) is False:
            return 1
        return 0

    cb = L.train_log_fn(on_step)
    try:
        L.check(L.lib().ullme_train_run(os.fsencode(str(config)), 1 if resume else 0, cb, None), f"training {config}")
    finally:
        if bar:
            bar.close()
    return records
