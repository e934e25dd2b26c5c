"""Nothing lost: every input record gives exactly one output record, batches never end early,
and a run that lost or failed items says so in its exit code."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from llmcat import Classifier, RetryOptions, Settings
from llmcat.runner import map_ordered

from .fake_server import FakeServer, Reply, chat_reply

# -- the ordered map never stops with items left --------------------------------------------------


@pytest.mark.parametrize(
    ("concurrency", "reorder_limit", "slow"),
    [(2, None, 0), (2, 4, 0), (1, 1, 0), (8, 8, 3), (3, 5, 7)],
)
def test_the_ordered_map_returns_every_item_when_a_slow_one_fills_the_buffer(
    concurrency: int, reorder_limit: int | None, slow: int
) -> None:
    """Item ``slow`` takes long enough for the others to fill the reorder buffer; every item
    must still come back, in order (the map once returned as soon as the buffer drained)."""

    async def work(item: int, index: int) -> int:
        await asyncio.sleep(0.2 if index == slow else 0)
        return item

    async def collect() -> list[int]:
        results = map_ordered(
            work, range(1000), concurrency=concurrency, reorder_limit=reorder_limit
        )
        return [r async for r in results]

    assert asyncio.run(collect()) == list(range(1000))


@pytest.mark.allow_model_requests
def test_a_batch_whose_first_item_is_slow_returns_every_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The red team's case: 1,000 items, concurrency 2, the first item 3 s slow gave 128 results
    and "0 errors". Here 400 items and a reorder buffer of 16, which the other items fill for
    sure while the first waits, whatever the machine's speed."""
    monkeypatch.setattr("llmcat.runner.REORDER_PER_SLOT", 8)
    with FakeServer("llamacpp", keep_alive=True) as server:

        def respond(body: dict[str, Any]) -> Reply:
            reply = chat_reply("Shoes")
            if re.search(r"\bitem-0\b", str(body["messages"][-1]["content"])):
                reply.delay = 3.0
            return reply

        server.responder = respond
        settings = Settings(
            base_url=server.base_url,
            cache=False,
            concurrency=2,
            retry=RetryOptions(attempts=1),
            progress=False,
            timeout=10,
        )
        clf = Classifier(["Shoes", "Toys"], settings=settings)
        started = time.monotonic()
        results = clf.classify_many([f"item-{i}" for i in range(400)])
        asyncio.run(clf.aclose())
    assert time.monotonic() - started >= 3.0  # the slow item was waited for
    assert len(results) == 400
    assert [r.product_id for r in results] == [str(i) for i in range(400)]
    assert [r for r in results if r.error is not None] == []
