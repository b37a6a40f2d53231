"""ctypes declarations of include/ullme.h (ABI version 1) and the loader of libullme.so.

Every function and struct of the header is declared here; nothing else touches ctypes types.
The library is loaded lazily (first use), so `import ullme` works without it.
"""
import ctypes
import ctypes.util
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_void_p)
from pathlib import Path

ABI_VERSION = 1
NUL_TERMINATED = ctypes.c_size_t(-1).value

# status codes (closed list)
OK, E_ARG, E_IO, E_FORMAT, E_UNSUPPORTED, E_OOM, E_CANCELLED, E_STATE, E_INTERNAL = range(9)
STATUS_NAMES = {0: "ULLME_OK", 1: "ULLME_E_ARG", 2: "ULLME_E_IO", 3: "ULLME_E_FORMAT",
                4: "ULLME_E_UNSUPPORTED", 5: "ULLME_E_OOM", 6: "ULLME_E_CANCELLED",
                7: "ULLME_E_STATE", 8: "ULLME_E_INTERNAL"}

# enums (C enums are int-sized)
c_enum = c_int
POOLING_MEAN, POOLING_WEIGHTEDMEAN, POOLING_CLS, POOLING_LASTTOKEN = range(4)
ATTENTION_BIDIRECTIONAL, ATTENTION_CAUSAL = range(2)
POOLING_AUTO = ATTENTION_AUTO = -1  # the model's metadata (sentence-transformers files, preset), else the defaults
# ullme_model_params.weight_storage / .precision: the option values Model() takes (None: the DEFAULT value).
WEIGHTS = {None: 0, "dense": 1, "stored": 2, "quantized": 3}      # ULLME_WEIGHTS_DEFAULT, _DENSE, _STORED, _QUANTIZED
PRECISIONS = {None: 0, "exact": 1, "bf16": 2, "int8": 3}          # ULLME_PRECISION_DEFAULT, _EXACT, _BF16, _INT8

progress_fn = CFUNCTYPE(c_int, c_void_p, c_size_t, c_size_t)


class ModelParams(Structure):
    _fields_ = [("struct_size", c_uint32), ("n_threads", c_int32), ("pooling", c_enum),
                ("attention", c_enum), ("max_length", c_int32), ("batch_size", c_int32),
                ("adapter_path", c_char_p), ("weight_storage", c_int32), ("precision", c_int32),
                ("reserved0", c_int32), ("preset", c_char_p)]


class ModelInfo(Structure):
    _fields_ = [("architecture", c_char * 32), ("hidden_size", c_int32), ("n_layers", c_int32),
                ("n_heads", c_int32), ("n_kv_heads", c_int32), ("intermediate_size", c_int32),
                ("vocab_size", c_int32), ("max_positions", c_int32), ("bos_token_id", c_int32),
                ("eos_token_id", c_int32), ("pad_token_id", c_int32), ("n_parameters", c_int64)]


class EmbedParams(Structure):
    _fields_ = [("struct_size", c_uint32), ("instruction", c_char_p), ("instruction_len", c_size_t),
                ("is_query", c_int), ("normalize", c_int), ("progress", progress_fn),
                ("progress_user", c_void_p), ("prompt", c_char_p), ("prompt_len", c_size_t),
                ("prompt_name", c_char_p), ("exclude_prompt", c_int32), ("truncate_dim", c_int32)]


class EmbedStats(Structure):
    _fields_ = [("n_texts", c_size_t), ("n_tokens", c_size_t), ("n_truncated", c_size_t)]


class TrainerParams(Structure):
    _fields_ = [("struct_size", c_uint32), ("lora_rank", c_int32), ("lora_alpha", c_float),
                ("lora_dropout", c_float), ("seed", ctypes.c_uint64), ("learning_rate", ctypes.c_double),
                ("min_learning_rate", ctypes.c_double), ("weight_decay", ctypes.c_double),
                ("grad_clip", ctypes.c_double), ("warmup_proportion", ctypes.c_double),
                ("steps_per_epoch", c_int32), ("max_epochs", c_int32), ("is_cosine_annealing", c_int),
                ("activation_checkpointing", c_int32), ("base_precision", c_int32)]


class TrainLog(Structure):
    _fields_ = [("step", c_int32), ("total_steps", c_int32), ("epoch", c_int32), ("loss", c_float),
                ("contrastive", c_float), ("generative", c_float), ("kl", c_float),
                ("learning_rate", ctypes.c_double), ("grad_norm", c_float), ("seconds", ctypes.c_double),
                ("tokens_per_second", ctypes.c_double), ("nonfinite", c_int32)]


train_log_fn = CFUNCTYPE(c_int, c_void_p, POINTER(TrainLog))

model_p = c_void_p  # opaque ullme_model *
trainer_p = c_void_p  # opaque ullme_trainer *

_SIGNATURES = {
    "ullme_version": (c_char_p, []),
    "ullme_abi_version": (c_int, []),
    "ullme_last_error": (c_char_p, []),
    "ullme_status_name": (c_char_p, [c_int]),
    "ullme_pooling_from_name": (c_int, [c_char_p, POINTER(c_enum)]),
    "ullme_attention_from_name": (c_int, [c_char_p, POINTER(c_enum)]),
    "ullme_model_default_params": (ModelParams, []),
    "ullme_model_load": (c_int, [c_char_p, POINTER(ModelParams), POINTER(model_p)]),
    "ullme_model_free": (None, [model_p]),
    "ullme_model_get_info": (c_int, [model_p, POINTER(ModelInfo)]),
    "ullme_model_get_params": (c_int, [model_p, POINTER(ModelParams)]),
    "ullme_model_precision_path": (c_int, [model_p, POINTER(c_char_p)]),
    "ullme_model_embedder": (c_int, [model_p, POINTER(c_char_p)]),
    "ullme_tokenize": (c_int, [model_p, c_char_p, c_size_t, c_int, POINTER(c_int32), c_size_t,
                               POINTER(c_size_t)]),
    "ullme_detokenize": (c_int, [model_p, POINTER(c_int32), c_size_t, c_int, c_char_p, c_size_t,
                                 POINTER(c_size_t)]),
    "ullme_embed_default_params": (EmbedParams, []),
    "ullme_embed": (c_int, [model_p, POINTER(c_char_p), POINTER(c_size_t), c_size_t,
                            POINTER(EmbedParams), POINTER(c_float), c_size_t, POINTER(EmbedStats)]),
    "ullme_hidden_states": (c_int, [model_p, POINTER(c_int32), c_size_t, c_enum, POINTER(c_float),
                                    c_size_t]),
    "ullme_logits": (c_int, [model_p, POINTER(c_int32), c_size_t, POINTER(c_float), c_size_t]),
    "ullme_gen_score": (c_int, [model_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_float)]),
    "ullme_trainer_default_params": (TrainerParams, []),
    "ullme_trainer_new": (c_int, [model_p, POINTER(TrainerParams), POINTER(trainer_p)]),
    "ullme_trainer_free": (None, [trainer_p]),
    "ullme_trainer_parameter_count": (c_int, [trainer_p, POINTER(c_int64)]),
    "ullme_trainer_base_precision_path": (c_int, [trainer_p, POINTER(c_char_p)]),
    "ullme_trainer_embedding_backward": (c_int, [trainer_p, POINTER(c_int32), POINTER(c_size_t), c_size_t,
                                                 POINTER(c_int64), c_enum, POINTER(c_float), c_size_t,
                                                 POINTER(c_float), c_size_t]),
    "ullme_trainer_encode": (c_int, [trainer_p, POINTER(c_int32), POINTER(c_size_t), c_size_t, c_enum,
                                     POINTER(c_float), c_size_t]),
    "ullme_trainer_lm_backward": (c_int, [trainer_p, POINTER(c_int32), POINTER(c_int32), POINTER(c_size_t),
                                          c_size_t, POINTER(c_float)]),
    "ullme_trainer_step": (c_int, [trainer_p, POINTER(ctypes.c_double), POINTER(c_float)]),
    "ullme_train_run": (c_int, [c_char_p, c_int, train_log_fn, c_void_p]),
}


class Error(Exception):
    """A libullme failure: `.status` is the ULLME_E_* code, `.status_name` its name, and the message
    is the library's (ullme_last_error()) or the binding's own for checks done in Python."""

    def __init__(self, message, status=E_ARG):
        self.status = int(status)
        self.status_name = STATUS_NAMES.get(self.status, f"status {self.status}")
        self.message = message
        super().__init__(f"{self.status_name}: {message}")


_lib = None
_lib_path = None
_lock = threading.Lock()


def candidate_paths():
    """Where libullme.so is looked for, in order: $ULLME_LIB, the copy an installed package carries
    (ullme/_native/lib, laid out as build/ and `make install`), and, for the package used from a checkout
    (source or `pip install -e`), that checkout's build trees."""
    out = []
    env = os.environ.get("ULLME_LIB")
    if env:
        p = Path(env)
        out.append(p / "libullme.so" if p.is_dir() else p)
    pkg = Path(__file__).resolve().parent
    out.append(pkg / "_native" / "lib" / "libullme.so")
    repo = pkg.parent.parent.parent  # bindings/python/ullme -> repo root
    if (repo / "include" / "ullme.h").is_file():
        for sub in ("build/lib", ".build/release", ".build/debug"):
            out.append(repo / sub / "libullme.so")
    return out


def lib():
    """The loaded, declared and ABI-checked library (loaded on first use)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        handle = None
        for p in candidate_paths():
            if p.is_file():
                try:
                    handle = ctypes.CDLL(str(p.resolve()))
                    _lib_path = str(p.resolve())
                    break
                except OSError as e:
                    tried.append(f"{p} (failed to load: {e})")
            else:
                tried.append(f"{p} (not found)")
        if handle is None:
            sys_name = ctypes.util.find_library("ullme")
            if sys_name:
                try:
                    handle = ctypes.CDLL(sys_name)
                    _lib_path = sys_name
                except OSError as e:
                    tried.append(f"{sys_name} (system; failed to load: {e})")
            else:
                tried.append("system library path (ctypes.util.find_library('ullme'): none)")
        if handle is None:
            raise Error("libullme.so not found; build it with `make lib` (an installed package carries it: "
                        "`make && pip install ./bindings/python`, or `make wheel`) or set ULLME_LIB to its path. "
                        "Looked in:\n  " + "\n  ".join(tried), E_IO)
        missing = []
        for name, (res, args) in _SIGNATURES.items():
            try:
                f = getattr(handle, name)
            except AttributeError:
                missing.append(name)
                continue
            f.restype = res
            f.argtypes = args
        if missing:
            raise Error(f"{_lib_path} lacks symbols {missing}: not a libullme of ABI {ABI_VERSION}", E_STATE)
        abi = handle.ullme_abi_version()
        if abi != ABI_VERSION:
            raise Error(f"{_lib_path} has ABI version {abi}; this binding needs {ABI_VERSION}", E_STATE)
        _lib = handle
        return _lib


def library_path():
    lib()
    return _lib_path


def last_error():
    return lib().ullme_last_error().decode("utf-8", "replace")


def check(status, what=""):
    """Raise Error with the library's thread-local message if status != OK."""
    if status != OK:
        msg = last_error() or "(no message)"
        raise Error(f"{what}: {msg}" if what else msg, status)
