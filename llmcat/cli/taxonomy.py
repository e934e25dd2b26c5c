"""``llmcat taxonomy``: taxonomies by name: show, list, fetch, add."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llmcat.batch.progress import Progress
from llmcat.cli._common import (
    described,
    verbosity,
)
from llmcat.config.flags import SubParsers, add_flags
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.taxonomy.names import OFFICIAL, available, recognise, taxonomy_folders
from llmcat.taxonomy.tree import Taxonomy


def add_parser(sub: SubParsers) -> None:
    """``llmcat taxonomy show|list|fetch|add``: flags and help."""
    taxonomy = sub.add_parser(
        "taxonomy",
        parents=[verbosity()],
        help="taxonomies by name: show, list, fetch, add",
        description=described(
            "Taxonomies by name (google, shopify, google@2021-09-21) work wherever a taxonomy "
            "file does; they are found offline in LLMCAT_TAXONOMY_DIR and <cache dir>/taxonomies, "
            "where fetch and add keep them.",
            "llmcat taxonomy fetch google",
            "llmcat taxonomy add ~/Downloads/taxonomy-with-ids.en-US.txt",
            "llmcat taxonomy list",
            "llmcat taxonomy show google",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tax_sub = taxonomy.add_subparsers(dest="taxonomy_command", required=True)
    show = tax_sub.add_parser("show", help="node count, leaves, depth, top level")
    show.add_argument("file", type=Path, help="a taxonomy name (google) or file")
    tax_sub.add_parser("list", help="the taxonomies found by name, and their files")
    fetch = tax_sub.add_parser(
        "fetch", help="download an official taxonomy into the taxonomy folder (needs the network)"
    )
    fetch.add_argument("name", choices=sorted(OFFICIAL))
    fetch.add_argument(
        "--url", help="download from here instead of the official address (file:// works)"
    )
    fetch.add_argument("--to", type=Path, help="folder (default: <cache dir>/taxonomies)")
    add_flags(fetch, Settings, "cli", only=("progress",))
    add = tax_sub.add_parser(
        "add", help="keep a Google or Shopify taxonomy file you have, found by name afterwards"
    )
    add.add_argument("file", type=Path, help="the file as published (taxonomy-with-ids, ...)")
    add.add_argument("--to", type=Path, help="folder (default: <cache dir>/taxonomies)")


def run(args: argparse.Namespace) -> int:
    """``llmcat taxonomy show|list|fetch|add``."""
    command = args.taxonomy_command
    if command == "list":
        return _list_taxonomies()
    if command == "fetch":
        return _keep_taxonomy(
            _download(args.url or OFFICIAL[args.name], args.progress), args.name, args.to
        )
    if command == "add":
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        return _keep_taxonomy(data, None, args.to)
    taxonomy = Taxonomy.from_file(args.file)
    for key, value in taxonomy.summary().items():
        if key != "top_level":
            print(f"{key:>10}: {value}")
    roots = taxonomy.roots()
    print(f"{'top level':>10}: {len(roots)}")
    for root in roots:
        print(f"            - {root.name}")
    return 0


def _list_taxonomies() -> int:
    found = available()
    for named in found:
        print(f"{named.name}\t{named.path}")
    folders = ", ".join(str(f) for f in taxonomy_folders())
    print(f"{len(found)} named taxonomies in {folders or 'no folder'}", file=sys.stderr)
    if not found:
        print(
            "get one: llmcat taxonomy fetch google (needs the network), or llmcat taxonomy add "
            "FILE (a Google or Shopify file you have)",
            file=sys.stderr,
        )
    return 0


def _download(source: str, progress: bool | None) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(source, timeout=60) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            bar = Progress(size, label=f"downloading {source}", enabled=progress)
            chunks = []
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                bar.advance(len(chunk))
            bar.close()
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(
            f"cannot download {source}: {exc} (--url takes a mirror or a file:// URL; "
            "`llmcat taxonomy add FILE` keeps a file you have)"
        ) from exc
    return b"".join(chunks)


def _keep_taxonomy(data: bytes, kind: str | None, folder: Path | None) -> int:
    """Keep ``data`` as ``<kind>@<version>.txt`` in the taxonomy folder, if it parses as an
    official taxonomy (of ``kind``, when given)."""
    target_dir = folder or (Settings().resolved().cache_dir or Path(".")) / "taxonomies"
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target_dir / f".incoming-{os.getpid()}.txt"
    partial.write_bytes(data)
    try:
        taxonomy = Taxonomy.from_file(partial)  # never keep a file that does not parse
        named = recognise(partial)
        if named is None or (kind is not None and named.kind != kind):
            raise ConfigError(
                f"not {kind or 'a Google or Shopify'} taxonomy file (expected its published "
                "format: '<id> - A > B' or 'gid://shopify/TaxonomyCategory/...')"
            )
    except ConfigError:
        partial.unlink()
        raise
    target = target_dir / f"{named.name}.txt"
    partial.replace(target)
    print(
        f"{named.name}: {len(taxonomy)} categories, {len(taxonomy.leaves())} leaves -> {target} "
        f"(--taxonomy {named.kind} finds it)"
    )
    return 0
