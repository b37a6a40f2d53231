#!/usr/bin/env python3
"""Embed a query and three documents with libullme's Python binding and rank the documents by cosine (the
Python twin of examples/c/embed.c and examples/go).

    PYTHONPATH=bindings/python python3 examples/python/rank.py [MODEL]

MODEL: a GGUF file or a Hugging Face / sentence-transformers directory; default: the default model (the cached
SmolLM2-135M-Instruct GGUF with libullme's trained adapter)."""
import sys

import ullme

INSTRUCTION = "Given a question, retrieve passages that answer it"
QUERY = "What were lighthouses used for?"
DOCS = ["Lighthouses guided ships along dangerous coasts with a bright light at night.",
        "Sourdough bread needs flour, water, salt and a lively starter.",
        "The stock market closed higher on Tuesday after a volatile session."]


def main():
    model = ullme.Model(sys.argv[1]) if len(sys.argv) > 1 else ullme.Model()
    with model:
        q = model.encode_queries([QUERY], instruction=INSTRUCTION)
        d = model.encode_corpus(DOCS, instruction=INSTRUCTION)
        scores = (d @ q[0]).tolist()  # embeddings are L2-normalised: cosine = dot product
        print(f"libullme {ullme.__version__}, {sys.argv[1] if len(sys.argv) > 1 else 'the default model'} (dim {model.dim})")
        print(f"query: {QUERY}")
        for rank, i in enumerate(sorted(range(len(DOCS)), key=lambda i: -scores[i]), 1):
            print(f"{rank}. {scores[i]:.4f}  {DOCS[i]}")


if __name__ == "__main__":
    main()
