"""``llmcat api``: the HTTP server (``pip install 'llmcat[api]'``): classify, describe and
extract attributes of one product or a list per request, with the options of ``llmcat
classify`` (and the attributes of ``llmcat extract``) loaded once."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.attributes.shopify import find_shopify_attributes, is_shopify_taxonomy
from llmcat.cli._common import MODEL_SETTINGS, add_image_dir_flag, described, verbosity
from llmcat.cli.classify import add_category_flags, taxonomy_from
from llmcat.config.flags import SubParsers, add_flags, given
from llmcat.config.options import ClassifyOptions, ExtractOptions, validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.taxonomy.names import taxonomy_folders, taxonomy_path

if TYPE_CHECKING:
    from llmcat.api.recipe import ApiRecipe, ExtractRecipe

log = logging.getLogger(__name__)

#: products in flight together when --concurrency is not given: what the embedder batches
CONCURRENCY = 64


def add_parser(sub: SubParsers) -> None:
    """``llmcat api``: its flags and help."""
    api = sub.add_parser(
        "api",
        parents=[verbosity()],
        help="serve classify, describe and extract over HTTP",
        usage="llmcat api [--labels A,B,C | --taxonomy NAME|FILE] [--attribute-examples FILE | "
        "--attributes NAMES|FILE] [--host H] [--port P] [options]",
        description=described(
            "Serve POST /v1/classify, /v1/describe and /v1/extract (one product or a list per "
            "request), GET /healthz, /readyz, /metrics and /openapi.json (docs/api.md). The "
            "categories, examples, attributes and model are loaded once, at start.",
            "llmcat api --taxonomy google --port 8080",
            "llmcat api --taxonomy google --attribute-examples train.jsonl   # and /v1/extract",
            "LLMCAT_API_KEYS=secret1,secret2 llmcat api --labels-file labels.txt --host 0.0.0.0",
            "curl -s localhost:8080/v1/classify -H 'content-type: application/json' "
            '-d \'{"title": "Trail running shoes"}\'',
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_category_flags(api)
    model = api.add_argument_group("model")
    add_flags(model, Settings, "cli", only=MODEL_SETTINGS)
    images = api.add_argument_group("images")
    add_flags(
        images, Settings, "cli", only=("images", "vision", "max_image_bytes", "max_image_side")
    )
    add_image_dir_flag(
        images,
        "a folder of this machine that products' local image paths may name (default: none, "
        "so a request can only send URLs and data URIs)",
    )
    attributes = api.add_argument_group(
        "attributes (POST /v1/extract; without these, Shopify's for --taxonomy shopify, else "
        "not served)"
    )
    attributes.add_argument(
        "--attribute-examples",
        type=Path,
        metavar="FILE",
        help="labelled products for extraction, as 'llmcat extract --examples' reads them",
    )
    attributes.add_argument(
        "--attributes",
        dest="attribute_schema",
        metavar="NAMES|FILE",
        help="the attributes to extract, as 'llmcat extract --attributes' reads them",
    )
    attributes.add_argument(
        "--category-field",
        default="category",
        metavar="NAME",
        help="the product attribute that names its category for extraction (default "
        "'category'); with Shopify's attributes the classifier chooses it",
    )
    server = api.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    server.add_argument(
        "--deadline",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a request's time, queueing included; past it the answer is 504 and its work is "
        "cancelled (default 10)",
    )
    server.add_argument(
        "--max-pending",
        type=int,
        default=1024,
        metavar="N",
        help="products admitted and unanswered at once; more get 503 with Retry-After "
        "(default 1024; a request that would wait past its deadline is refused too)",
    )
    server.add_argument(
        "--max-items",
        type=int,
        default=64,
        metavar="N",
        help="products in one list (default 64; more: 413)",
    )
    server.add_argument(
        "--max-body-bytes",
        type=int,
        default=1_000_000,
        metavar="N",
        help="a request body's size (default 1,000,000; more: 413)",
    )
    server.add_argument(
        "--api-keys-file",
        type=Path,
        metavar="FILE",
        help="API keys, one per line, beside LLMCAT_API_KEYS (comma-separated); with keys, "
        "every endpoint but /healthz and /readyz needs 'Authorization: Bearer KEY'",
    )
    server.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without keys on an address other than loopback (behind a proxy that checks "
        "callers); without keys and without this, only 127.0.0.1 / ::1 / localhost",
    )
    server.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call the API (repeat it; default: none, CORS off)",
    )
    server.add_argument(
        "--access-log", action="store_true", help="log every request (method, path, status)"
    )
    scale = api.add_argument_group("scale-out (pip install 'ray[serve]')")
    scale.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="serve on Ray Serve: a cluster's address ('auto', 10.0.0.5:6379) or, alone, a "
        "local cluster started here; the same app in each replica, Serve's proxy on --host:--port",
    )
    scale.add_argument(
        "--ray-replicas",
        default="1-2",
        metavar="MIN-MAX",
        help="replicas of --ray, autoscaled on the requests in flight (default 1-2)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the classifier once, then serve until SIGTERM (exit 0) or Ctrl-C."""
    try:
        from llmcat.api.server import run_server
    except ImportError as exc:
        raise ConfigError(
            f"llmcat api needs the server's packages ({exc.name} is missing): "
            "pip install 'llmcat[api]'"
        ) from None
    recipe = recipe_from(args)
    if args.ray is not None:
        return _on_ray(args, recipe)
    app = recipe.app()
    # a server that says nothing for minutes of warm-up looks hung
    if not getattr(args, "quiet", False):
        address = f"[{args.host}]" if ":" in args.host else args.host
        print(
            f"llmcat api: serving http://{address}:{args.port} (GET /readyz is 200 once warm; "
            "-v for the log, Ctrl-C or SIGTERM to stop)",
            file=sys.stderr,
            flush=True,
        )
    run_server(app, host=args.host, port=args.port, access_log=args.access_log)
    return 0


def recipe_from(args: argparse.Namespace) -> ApiRecipe:
    """What the server is built from, out of the command line (ConfigError for a host that
    needs keys and has none, and for options the commands refuse)."""
    from llmcat.api import ApiConfig, load_keys
    from llmcat.api.config import is_loopback
    from llmcat.api.recipe import ApiRecipe

    keys = load_keys(os.environ, args.api_keys_file)
    if not keys and not args.no_auth and not is_loopback(args.host):
        raise ConfigError(
            f"no API keys, so --host {args.host} is refused: set LLMCAT_API_KEYS or "
            "--api-keys-file, or pass --no-auth when a proxy in front checks callers"
        )
    config = ApiConfig(
        deadline=args.deadline,
        max_pending=args.max_pending,
        max_items=args.max_items,
        max_body_bytes=args.max_body_bytes,
        api_keys=keys,
        cors_origins=tuple(args.cors_origin),
    )
    chosen = given(args, Settings)
    chosen.setdefault("concurrency", CONCURRENCY)
    settings = validated(
        Settings, {**chosen, "image_dirs": list(args.image_dir)}, what="command-line"
    )
    options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
    extract = _extract_recipe(args, settings)
    categories = args.labels is not None or args.label or args.labels_file or args.taxonomy
    if args.examples is not None and not categories:
        raise ConfigError(
            "--examples are labelled products for /v1/classify and need its categories "
            "(--labels or --taxonomy); labelled products for /v1/extract go in "
            "--attribute-examples FILE"
        )
    if not categories and extract is None:
        raise ConfigError(
            "nothing to serve: give categories (--labels 'A,B,C', --labels-file FILE or "
            "--taxonomy NAME|FILE) for /v1/classify, attributes (--attribute-examples FILE or "
            "--attributes NAMES|FILE) for /v1/extract, or both"
        )
    taxonomy = taxonomy_from(args) if categories else None
    return ApiRecipe(taxonomy, options, settings, config, examples=args.examples, extract=extract)


def _extract_recipe(args: argparse.Namespace, settings: Settings) -> ExtractRecipe | None:
    """What /v1/extract serves: the attribute flags, or Shopify's attributes for its taxonomy
    (the served classifier choosing each product's category), or nothing."""
    from llmcat.api.recipe import ExtractRecipe

    options = validated(ExtractOptions, {"category_field": args.category_field}, what="extract")
    shopify = args.taxonomy is not None and is_shopify_taxonomy(taxonomy_path(args.taxonomy))
    if args.attribute_schema is not None or args.attribute_examples is not None:
        given = ExtractRecipe(
            args.attribute_schema, args.attribute_examples, options, by_category=shopify
        )
        return _checked(given, settings)
    if not shopify:
        return None
    try:
        found = find_shopify_attributes(taxonomy_folders(settings.resolved().cache_dir))
    except ConfigError as exc:
        log.warning("/v1/extract is not served: %s", exc)
        return None
    log.info("/v1/extract serves Shopify's attributes from %s", found)
    return _checked(ExtractRecipe(str(found), None, options, by_category=True), settings)


def _checked(recipe: ExtractRecipe, settings: Settings) -> ExtractRecipe:
    """``recipe`` once an extractor can be built from it (its files read now, before any
    server or Ray cluster starts), its errors in this command's flags."""
    try:
        recipe.extractor(settings)
    except ConfigError as exc:  # llmcat extract's advice, in llmcat api's words
        raise ConfigError(
            str(exc).replace("--examples FILE", "--attribute-examples FILE")
        ) from None
    return recipe


def _on_ray(args: argparse.Namespace, recipe: ApiRecipe) -> int:
    """``--ray``: the same app on Ray Serve, replicas autoscaled within ``--ray-replicas``."""
    from llmcat.api.ray_serve import Scaling, serve_on_ray  # Ray itself: imported inside

    low, _, high = args.ray_replicas.partition("-")
    try:
        scaling = Scaling(min_replicas=int(low), max_replicas=int(high or low))
    except ValueError:
        raise ConfigError(f"--ray-replicas {args.ray_replicas!r}: MIN-MAX, e.g. 1-2") from None
    try:
        import ray.serve  # noqa: F401 - checked before the cluster is touched
    except ImportError:
        raise ConfigError("--ray needs Ray Serve: pip install 'ray[serve]'") from None
    serve_on_ray(recipe, scaling, address=args.ray, host=args.host, port=args.port)
    return 0
