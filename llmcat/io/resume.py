"""Resuming a batch: the records a stopped run kept are checked against this run's inputs and
setup (the same items, in order, made the same way) before the rest runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from llmcat.errors import ConfigError, InputError
from llmcat.io.inputs import Item, coerce_product, item_id
from llmcat.io.output import ResultWriter, digest_of
from llmcat.io.review import ReviewWriter
from llmcat.types import Classification


def skip_kept(
    items: Iterator[Item],
    kept: list[dict[str, object]],
    identity: dict[str, str],
    writer: ResultWriter,
    on_kept: Callable[[Item, dict[str, object], int], None] = lambda item, record, index: None,
) -> int:
    """Consume the inputs that ``kept`` records answer, checking that they are the same inputs
    and that the records come from the same setup (``on_kept`` sees each pair); the number
    skipped."""
    for index, record in enumerate(kept):
        for key, value in identity.items():
            if record.get(key, value) != value:
                raise ConfigError(
                    f"{writer.partial} was made with {key} {record.get(key)!r}, this run uses "
                    f"{value!r}; resume with the same settings, or run without --resume"
                )
        try:
            item = next(items)
        except StopIteration:
            raise ConfigError(
                f"{writer.partial} holds more records than the input has items; it was made from "
                "another input"
            ) from None
        expected = item_id(item, index)
        if str(record.get("product_id")) != expected:
            raise ConfigError(
                f"record {index + 1} of {writer.partial} is for id {record.get('product_id')!r}, "
                f"input item {index + 1} has id {expected!r}: it was made from another input"
            )
        on_kept(item, record, index)
    return len(kept)


def checked_inputs(
    digests: list[str], writer: ResultWriter, then: Callable[[Item, dict[str, object], int], None]
) -> Callable[[Item, dict[str, object], int], None]:
    """A kept record's input must be the one it was made from (its digest), not just share its
    position or id: another file of the same length, or changed titles, is refused."""

    def check(item: Item, record: dict[str, object], index: int) -> None:
        if index < len(digests) and digest_of(item) != digests[index]:
            raise ConfigError(
                f"input item {index + 1} (id {item_id(item, index)!r}) is not the one record "
                f"{index + 1} of {writer.partial} was made from: the input changed; run without "
                "--resume"
            )
        then(item, record, index)

    return check


def review_kept(reviewer: ReviewWriter | None) -> Callable[[Item, dict[str, object], int], None]:
    """Writes the review row of a kept record again (a resumed batch rebuilds its review file,
    so that it matches the output whatever the killed run had written)."""

    def add(item: Item, record: dict[str, object], index: int) -> None:
        if reviewer is None or isinstance(item, InputError) or record.get("error"):
            return
        result = Classification.model_validate(record)
        if result.needs_review:
            reviewer.add(coerce_product(item, index), result)

    return add
