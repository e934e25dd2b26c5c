"""AsyncOnce: one computation shared by its callers, whatever each caller does meanwhile."""

from __future__ import annotations

import asyncio

from llmcat.llm.once import AsyncOnce


def test_a_waiter_that_gives_up_cancels_neither_the_owner_nor_the_other_waiters() -> None:
    once = AsyncOnce[int]()
    computed = 0

    async def compute() -> int:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.3)
        return 42

    async def main() -> None:
        owner = asyncio.create_task(once.get(compute))
        await asyncio.sleep(0.05)
        patient = asyncio.create_task(once.get(compute))
        try:  # a request whose deadline passes while the value is computed
            await asyncio.wait_for(once.get(compute), 0.05)
            raise AssertionError("the impatient waiter should have timed out")
        except asyncio.TimeoutError:
            pass
        assert await owner == 42
        assert await patient == 42
        assert await once.get(compute) == 42

    asyncio.run(main())
    assert computed == 1


def test_a_failure_reaches_the_waiters_and_is_not_remembered() -> None:
    once = AsyncOnce[int]()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        if calls == 1:
            raise ValueError("first try fails")
        return 7

    async def main() -> None:
        results = await asyncio.gather(once.get(compute), once.get(compute), return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await once.get(compute) == 7

    asyncio.run(main())
    assert calls == 2


def test_an_owner_that_gives_up_leaves_the_computation_to_finish_once() -> None:
    once = AsyncOnce[int]()
    computed = 0

    async def compute() -> int:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.2)
        return 5

    async def main() -> None:
        try:  # the first request, past its deadline while the vectors are built
            await asyncio.wait_for(once.get(compute), 0.05)
            raise AssertionError("the owner should have timed out")
        except asyncio.TimeoutError:
            pass
        assert await once.get(compute) == 5  # waits for the same computation

    asyncio.run(main())
    assert computed == 1
