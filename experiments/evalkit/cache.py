"""Embeddings cached as .npy files: DIR/<task>/<role>-<key>.npy, with <role>-<key>.json beside it naming
the system, seed and encoder settings that first wrote it.

The key hashes everything the vectors depend on: the encoder's fingerprint (model file, adapter files,
attention, pooling, max length, library version), the role ("queries", "corpus", "sts"), the instruction
and the exact texts. Changing a limit, an instruction or a model therefore misses the cache instead of
returning stale vectors, and two systems that embed the same texts the same way (say the base model with
and without document instructions, for its queries) share the file. Stale files are never deleted
(remove the directory to clean up).
"""
import hashlib
import json
import os
import re

import numpy as np


def safe_name(name):
    """A name usable as one path component."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


class EmbeddingCache:
    def __init__(self, directory):
        self.directory = directory
        self.hits = self.misses = 0

    def get(self, task, role, fingerprint, instruction, texts, compute, about=None):
        """The cached array for these inputs, else compute() saved (temporary file, then renamed)."""
        setting = {"encoder": fingerprint, "role": role, "instruction": instruction}
        h = hashlib.sha256(json.dumps(setting, sort_keys=True).encode())
        for t in texts:
            h.update(json.dumps(t, sort_keys=True, ensure_ascii=False).encode() + b"\n")
        path = os.path.join(self.directory, safe_name(task), f"{role}-{h.hexdigest()[:24]}")
        if os.path.exists(path + ".npy"):
            self.hits += 1
            return np.load(path + ".npy")
        self.misses += 1
        arr = np.ascontiguousarray(compute(), dtype=np.float32)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for ext, write in ((".json", lambda f: f.write(json.dumps({**setting, "texts": len(texts), **(about or {})},
                                                                  indent=1).encode())),
                           (".npy", lambda f: np.save(f, arr))):
            tmp = f"{path}{ext}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, path + ext)
        return arr
