"""A fault-injecting OpenAI-compatible server for reliability tests, and a simulation of what
llmcat must make of its faults.

Every chat request names a product key (``SKU-<n>`` in the title). Whether that request fails, and
how, is a pure function of (seed, key, how many requests for that key came before), so the outcome
of every item can be predicted by ``simulate`` from llmcat's documented policy: transport faults
are retried up to ``attempts`` times; an answer outside the labels or an empty one gets one re-ask
(with its own transport retries); then the item is an error record.

    python -m tests.fault_server bench [--items 2000] [--concurrency 32] [--hang-rate 0.025]
                                       [--timeout 2] [--hang 3]

runs the head-of-line benchmark: items/s against the bound that the slots allow, and

    python -m tests.fault_server soak [--items 10000] [--concurrency 64] [--rate 0.2]
                                      [--kinds hang] [--seed 11]

the reliability soak with the figures that tell a starved machine from llmcat (error records
seen against predicted, late and lost attempts, the client's event-loop lag and CPU, the load).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fake_server import FakeServer, Reply, chat_reply

LABELS = ["Shoes", "Mobile Phones", "Toys", "Kitchen", "Garden"]
#: faults the transport layer retries, and faults in the answer that llmcat re-asks once for
TRANSPORT = ("429", "500", "503", "hang", "malformed", "truncated")
OUTPUT = ("outside", "empty")
FAULTS = TRANSPORT + OUTPUT
_KEY = re.compile(r"SKU-\d+")
_TAG = re.compile(r"\[attempt (\d+)\]")


def uniform(seed: int, key: str, attempt: int) -> float:
    """A deterministic number in [0, 1) for one request."""
    digest = hashlib.sha256(f"{seed}:{key}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def fault_for(
    seed: int, key: str, attempt: int, rate: float, kinds: tuple[str, ...] = FAULTS
) -> str | None:
    """The fault injected into request number ``attempt`` (0-based) for ``key``, or None."""
    u = uniform(seed, key, attempt)
    if u >= rate:
        return None
    return kinds[min(int(u / rate * len(kinds)), len(kinds) - 1)]


def label_for(key: str) -> str:
    """The right answer for a product."""
    return LABELS[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(LABELS)]


def simulate(
    seed: int, key: str, rate: float, attempts: int, kinds: tuple[str, ...] = FAULTS
) -> str:
    """What llmcat must return for ``key``: the label, 'OutputError' or 'BackendError'."""
    return replay(lambda n: fault_for(seed, key, n, rate, kinds), attempts, label_for(key))[0]


def replay(
    fault_at: Callable[[int], str | None],
    attempts: int,
    label: str,
    transport: tuple[str, ...] = TRANSPORT,
) -> tuple[str, int]:
    """llmcat's documented policy applied to a schedule (``fault_at(n)``: what attempt number
    ``n`` for one product meets; faults in ``transport`` are retried): the outcome, and how many
    attempts the policy makes."""
    counter = 0

    def one_call() -> str | None:  # one model call: transport retries, then an answer
        nonlocal counter
        for _ in range(attempts):
            fault = fault_at(counter)
            counter += 1
            if fault not in transport:
                return fault or "ok"
        return None

    first = one_call()
    if first is None:
        return "BackendError", counter
    if first == "ok":
        return label, counter
    second = one_call()  # the re-ask
    if second is None:
        return "BackendError", counter
    return (label if second == "ok" else "OutputError"), counter


@dataclass
class FaultServer:
    """A FakeServer (``llamacpp``: no constraint on the wire) whose chat answers are faulted."""

    seed: int = 0
    rate: float = 0.2
    kinds: tuple[str, ...] = FAULTS
    hang: float = 2.0  # seconds a hanging request sleeps (longer than the client's timeout)
    delay: float = 0.0  # seconds every answer takes
    attempts: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    #: what each product's requests met, in the order they arrived: [tag, "ok" or the fault],
    #: where tag is the "[attempt N]" a test may put into a request ("" without one)
    served: dict[str, list[list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server = FakeServer("llamacpp", model="fault-model", keep_alive=True)
        self.server.responder = self.respond
        self.server.get_routes["/served"] = lambda: Reply(body=self.served)
        self._lock = threading.Lock()

    def __enter__(self) -> FaultServer:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def respond(self, body: dict[str, Any]) -> Reply:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        found = _KEY.search(text)
        key = found.group(0) if found else "?"
        with self._lock:
            attempt = self.attempts[key]
            self.attempts[key] += 1
        fault = fault_for(self.seed, key, attempt, self.rate, self.kinds)
        tag = _TAG.search(text)
        with self._lock:
            self.served.setdefault(key, []).append([tag.group(1) if tag else "", fault or "ok"])
            if fault is not None:
                self.faults[fault] += 1
        good = chat_reply(label_for(key), model="fault-model")
        good.delay = self.delay
        if fault is None:
            return good
        if fault == "429":
            return Reply(
                status=429,
                body={"error": {"message": "slow down"}},
                headers={"retry-after": "0.01"},
            )
        if fault in ("500", "503"):
            return Reply(status=int(fault), body={"error": {"message": f"fault {fault}"}})
        if fault == "hang":
            return Reply(body=good.body, delay=self.hang)
        if fault == "malformed":
            return Reply(raw=b"<html>502 Bad Gateway</html>", content_type="text/html")
        if fault == "truncated":
            return Reply(body=good.body, cut=40)
        if fault == "outside":
            return chat_reply("Gadgets", model="fault-model")
        return chat_reply("", model="fault-model")  # empty


@contextlib.contextmanager
def fault_server_process(**options: Any) -> Iterator[str]:
    """A ``FaultServer`` in a process of its own (so that it does not share the GIL with the
    client under test); yields its base URL."""
    args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_server", "serve", *args],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the fault server did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _serve(argv: list[str]) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m tests.fault_server serve")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--hang", type=float, default=2.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--kinds", default=",".join(FAULTS))
    args = parser.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    with FaultServer(
        seed=args.seed, rate=args.rate, hang=args.hang, delay=args.delay, kinds=kinds
    ) as fs:
        print(fs.base_url, flush=True)
        while True:
            time.sleep(3600)


def _bench(argv: list[str]) -> int:
    """Items/s with hanging requests, against concurrency / mean seconds a request holds a slot."""
    import argparse
    import asyncio
    import time

    from llmcat import Classifier, RetryOptions, Settings

    parser = argparse.ArgumentParser(prog="python -m tests.fault_server bench")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--hang-rate", type=float, default=0.025)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--hang", type=float, default=3.0)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds every answer takes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    products = [{"id": f"SKU-{i}", "title": f"product SKU-{i}"} for i in range(args.items)]
    server = fault_server_process(
        seed=args.seed, rate=args.hang_rate, kinds="hang", hang=args.hang, delay=args.delay
    )
    with server as url:  # in its own process: the client under test has a core of its own
        settings = Settings(
            base_url=url,
            cache=False,
            timeout=args.timeout,
            concurrency=args.concurrency,
            retry=RetryOptions(backoff=0.0),
            progress=False,
        )
        clf = Classifier(LABELS, settings=settings)
        clf.classify({"id": "warm", "title": "warm-up SKU-warm"})
        held: list[float] = []  # seconds each item holds its slot: all its attempts and waits
        attempts: list[float] = []
        original_item, original_call = clf.run, clf._engine.caller._call_once

        async def timed_item(product: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original_item(product)
            finally:
                held.append(time.perf_counter() - start)

        async def timed_call(request: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original_call(request)
            finally:
                attempts.append(time.perf_counter() - start)

        clf.run = timed_item  # type: ignore[method-assign]
        clf._engine.caller._call_once = timed_call  # type: ignore[method-assign]
        start = time.perf_counter()
        results = clf.classify_many(products)
        wall = time.perf_counter() - start
        asyncio.run(clf.aclose())
    errors = sum(r.error is not None for r in results)
    rate = len(results) / wall
    slot_seconds = sum(held)  # hangs until their timeout, retries and normal answers
    mean_hold = slot_seconds / len(held)
    bound = args.concurrency / mean_hold
    hangs = sum(t >= args.timeout for t in attempts)
    print(
        f"items {len(results)}, errors {errors}, requests {len(attempts)}, timed out (hangs) {hangs}"
    )
    print(f"wall {wall:.2f} s -> {rate:.1f} items/s")
    print(
        f"slot-seconds {slot_seconds:.1f} over {len(held)} items = {mean_hold * 1000:.1f} ms per item; "
        f"bound = {args.concurrency} / {mean_hold:.4f} s = {bound:.1f} items/s"
    )
    print(f"items/s / bound = {rate / bound:.1%}")
    return 0


def _soak(argv: list[str]) -> int:
    """The reliability soak as a script, with the figures that tell starvation from llmcat:
    error records seen against those the schedule predicts, attempts outside the schedule
    (answered but read after the timeout: "late"; lost before the server read them: "lost"),
    the client's event-loop lag and CPU, and the machine's load. Loopback only; bounded by
    --items. Exit 1 when any outcome is not what the policy gives for what its attempts met."""
    import argparse
    import os
    import resource
    import time

    from tests.llm.test_reliability import check_soak, soak

    parser = argparse.ArgumentParser(prog="python -m tests.fault_server soak")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--kinds", default=",".join(FAULTS), help="faults, or 'hang'")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    load_before = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    lags: list[float] = []
    started = time.monotonic()
    results, served, met, elapsed = soak(
        args.items,
        seed=args.seed,
        rate=args.rate,
        kinds=kinds,
        concurrency=args.concurrency,
        lags=lags,
    )
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - started
    predicted = Counter(
        simulate(args.seed, f"SKU-{i}", args.rate, 5, kinds) for i in range(args.items)
    )
    seen = Counter(
        "ok"
        if r.error is None
        else ("BackendError" if r.error.type != "OutputError" else "OutputError")
        for r in results
    )
    try:
        unplanned = check_soak(results, served, met, seed=args.seed, rate=args.rate, kinds=kinds)
        verdict = "every outcome is what the policy gives for what its attempts met"
    except AssertionError as exc:
        unplanned, verdict = Counter(), f"OUTCOME NOT EXPLAINED: {str(exc)[:300]}"
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    lags.sort()
    p99 = lags[int(len(lags) * 0.99)] if lags else 0.0
    late_loop = sum(lag > 0.5 for lag in lags)
    errors_predicted = args.items - sum(v for k, v in predicted.items() if k in LABELS)
    print(
        f"soak: {args.items} items, concurrency {args.concurrency}, faults {args.rate:.1%} of "
        f"requests ({','.join(kinds)}), seed {args.seed}: {elapsed:.1f} s"
    )
    print(
        f"error records: {sum(r.error is not None for r in results)} seen, {errors_predicted} "
        f"predicted by the schedule ({dict(predicted - Counter(dict.fromkeys(LABELS, 10**9)))})"
    )
    print(f"  seen by type: BackendError {seen['BackendError']}, OutputError {seen['OutputError']}")
    print(f"attempts outside the schedule: late {unplanned['late']}, lost {unplanned['lost']}")
    print(
        f"client event loop: lag p99 {p99 * 1000:.0f} ms, max {(lags[-1] if lags else 0) * 1000:.0f} "
        f"ms, {late_loop} wake-ups more than 0.5 s late; client CPU {cpu:.1f} s in {wall:.1f} s "
        f"({cpu / wall:.0%} of one core)"
    )
    print(
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
        f"({os.cpu_count()} CPUs)"
    )
    print(verdict)
    return 0 if verdict.startswith("every") else 1


if __name__ == "__main__":
    command, rest = (sys.argv[1:2] or ["bench"])[0], sys.argv[2:]
    commands = {"serve": _serve, "soak": _soak}
    sys.exit(commands.get(command, _bench)(rest))
