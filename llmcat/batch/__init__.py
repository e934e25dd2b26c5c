"""Running items: one product, a stream or a list, each to a result or an error record, never
lost (``runner``); progress on long work."""

from llmcat.batch.progress import Progress
from llmcat.batch.runner import ItemRunner, Worker, map_ordered

__all__ = ["ItemRunner", "Progress", "Worker", "map_ordered"]
