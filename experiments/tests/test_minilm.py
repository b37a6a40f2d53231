"""The MiniLM row (transformers + mean pooling + L2 normalisation as the model's configs say) against
sentence-transformers loading the same directory."""
import numpy as np

from evalkit.encoders import MiniLMEncoder

TEXTS = ["open and possibly create a file",
         "The open() system call opens the file specified by pathname. " * 40,  # > 256 tokens: truncated
         "a", "Lighthouses guide ships.", "Ein Leuchtturm steht am Hafen."]


def test_minilm_matches_sentence_transformers(minilm_path):
    from sentence_transformers import SentenceTransformer
    enc = MiniLMEncoder(minilm_path, batch_size=2)  # batches of mixed lengths: padding must not matter
    assert enc.max_seq_length == 256 and enc.normalize
    ours = enc.encode_queries(TEXTS)
    st = SentenceTransformer(minilm_path, device="cpu")
    assert st.max_seq_length == 256
    ref = st.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    assert np.abs(ours - ref).max() < 2e-5, np.abs(ours - ref).max()
    docs = enc.encode_corpus([{"title": "open", "text": "opens a file"}, {"title": "", "text": "a"}])
    assert np.abs(docs - st.encode(["open opens a file", "a"], convert_to_numpy=True)).max() < 2e-5
