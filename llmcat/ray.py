"""Ray Data: classify or describe a ``ray.data.Dataset`` across a cluster
(``pip install 'llmcat[ray]'``; Ray is imported on first use, never by ``import llmcat``).

- ``classify_dataset`` / ``describe_dataset``: an actor pool (``map_batches``) of ``Classifier`` or
  ``Describer`` workers, one per actor, for any backend: the embedded model, one server or a list
  of servers (each actor takes the next URL), or the in-process vLLM engine (``num_gpus=1``: one
  engine per actor and GPU). The dataset comes back with its own columns and the result columns of
  ``classify_frame`` / ``describe_frame``, with a fixed Arrow type each.
- ``classify_dataset_http``: the model requests go through ``ray.data.llm``'s HTTP request
  processor to an OpenAI-compatible server; llmcat renders them before and reads the answers after
  (see that function).

The driver classifies the first product itself before any actor starts: a wrong option, taxonomy
or server fails there, once, and what that builds (the taxonomy's and the examples' embeddings)
is put in the object store for every actor to adopt instead of embedding it again. Fitted trust
and supervised heads are files in the cache folder: actors on the driver's machine (or sharing
its cache folder) read them; others fit them again, deterministically.

Results equal the single-process run's item for item: the same workers, the same requests.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .options import ClassifyOptions, CopyOptions
from .settings import Settings
from .tables import CLASSIFICATION_COLUMNS, COPY_COLUMNS, row_record, with_arrow_results
from .taxonomy import Taxonomy

log = logging.getLogger("llmcat")

#: rows handed to one worker call: enough to keep its concurrency busy, small enough to spread
DEFAULT_BATCH_SIZE = 256


def need_ray() -> Any:
    """Import Ray (with Ray Data), or say which extra brings it."""
    try:
        import ray
        import ray.data  # Ray Data is a module of its own
    except ImportError:
        raise ConfigError("Ray is needed for llmcat.ray: pip install 'llmcat[ray]'") from None
    return ray


@dataclass(frozen=True)
class WorkerRecipe:
    """Everything an actor needs to build its worker: plain, picklable values only (a backend
    instance or an embedder holds connections and models, so each actor makes its own)."""

    kind: str  # "classify" or "describe"
    options: ClassifyOptions | CopyOptions
    settings: Settings
    taxonomy: Taxonomy | None = None
    examples: Any = None
    base_urls: tuple[str, ...] = ()
    prefix: str = ""
    indexes: Any = None  # an ObjectRef of Classifier.built_indexes(), set by the driver
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def build(self, actor: int = 0) -> Any:
        """The worker of the ``actor``-th actor (which takes the matching server URL)."""
        from .classify import Classifier
        from .describe import Describer

        settings = self.settings
        if self.base_urls:
            settings = settings.model_copy(
                update={"base_url": self.base_urls[actor % len(self.base_urls)]}
            )
        if self.kind == "describe":
            assert isinstance(self.options, CopyOptions)
            return Describer(self.options, settings=settings, **self.overrides)
        assert isinstance(self.options, ClassifyOptions) and self.taxonomy is not None
        return Classifier(
            self.taxonomy, self.options, settings=settings, examples=self.examples, **self.overrides
        )

    @property
    def columns(self) -> Mapping[str, str]:
        return COPY_COLUMNS if self.kind == "describe" else CLASSIFICATION_COLUMNS


class _Dealer:
    """Hands each actor its number (a Ray actor), so a list of servers is shared out evenly."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def take(self) -> int:
        return next(self._next)


class BatchWorker:
    """The ``map_batches`` actor: one worker, built once; each call takes an Arrow batch of
    products and returns it with the result columns. A bad row is an error record in its row,
    never a failed batch."""

    def __init__(self, recipe: WorkerRecipe, dealer: Any = None) -> None:
        ray = need_ray()
        number = ray.get(dealer.take.remote()) if dealer is not None else 0
        self.recipe = recipe
        self.worker = recipe.build(number)
        if recipe.indexes is not None:
            self.worker.adopt_indexes(ray.get(recipe.indexes))

    def __call__(self, batch: Any) -> Any:
        records = [row_record(row) for row in batch.to_pylist(maps_as_pydicts="strict")]
        if self.recipe.kind == "describe":
            results = self.worker.describe_many(records, progress=False)
        else:
            results = self.worker.classify_many(records, progress=False)
        return with_arrow_results(batch, results, self.recipe.columns, self.recipe.prefix)


def classify_dataset(
    dataset: Any,
    taxonomy: Taxonomy | Sequence[str],
    options: ClassifyOptions | None = None,
    *,
    settings: Settings | None = None,
    examples: Any = None,
    workers: int = 2,
    base_urls: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = 1,
    num_gpus: float = 0,
    prefix: str = "",
    **overrides: Any,
) -> Any:
    """``dataset`` with each row's classification in new columns (``category_id``, ``path``,
    ``confidence``, ``needs_review``, ``alternatives``, ``error``; each ``prefix + name``),
    computed by ``workers`` actors. Options, settings, examples and keyword overrides are those of
    ``Classifier``; ``base_urls`` shares the actors out over several servers; ``num_gpus=1`` gives
    each actor a GPU (the ``vllm`` backend then runs one engine per GPU).

    Ray Data hands each actor whole blocks: split the dataset into blocks of about
    ``batch_size`` rows (``repartition(target_num_rows_per_block=...)``) so that every actor gets
    work. When the actors take every CPU, ``materialize()`` the dataset first: a read or
    repartition task still waiting for a CPU would wait for ever."""
    chosen = taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.from_labels(list(taxonomy))
    recipe = WorkerRecipe(
        "classify",
        options or ClassifyOptions(),
        settings or Settings(),
        taxonomy=chosen,
        examples=examples,
        base_urls=tuple(base_urls),
        prefix=prefix,
        overrides=dict(overrides),
    )
    return _map(dataset, recipe, workers, batch_size, num_cpus, num_gpus)


def describe_dataset(
    dataset: Any,
    options: CopyOptions | None = None,
    *,
    settings: Settings | None = None,
    workers: int = 2,
    base_urls: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = 1,
    num_gpus: float = 0,
    prefix: str = "",
    **overrides: Any,
) -> Any:
    """``dataset`` with each row's listing copy in new columns (``copy_title``, ``copy_bullets``,
    ``copy_body``, ``copy_flagged``, ``copy_findings``, ``error``); see ``classify_dataset``."""
    recipe = WorkerRecipe(
        "describe",
        options or CopyOptions(),
        settings or Settings(),
        base_urls=tuple(base_urls),
        prefix=prefix,
        overrides=dict(overrides),
    )
    return _map(dataset, recipe, workers, batch_size, num_cpus, num_gpus)


def _map(
    dataset: Any,
    recipe: WorkerRecipe,
    workers: int,
    batch_size: int,
    num_cpus: float,
    num_gpus: float,
) -> Any:
    ray = need_ray()
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
    recipe = _warmed(dataset, recipe)
    dealer = None
    if len(recipe.base_urls) > 1:
        dealer = ray.remote(num_cpus=0)(_Dealer).remote()
    return dataset.map_batches(
        BatchWorker,
        fn_constructor_args=(recipe, dealer),
        batch_size=batch_size,
        batch_format="pyarrow",
        # One batch at a time per actor: a worker already runs a batch's items concurrently,
        # and a second batch queued on a busy actor is one an idle actor cannot take.
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        udf_modifying_row_count=False,
    )


def _warmed(dataset: Any, recipe: WorkerRecipe) -> WorkerRecipe:
    """The recipe after the driver has run its first product: configuration errors surface here,
    and the embeddings it built go to the object store."""
    ray = need_ray()
    first = [
        row_record(row)
        for table in ray.get(dataset.limit(1).to_arrow_refs())
        for row in table.to_pylist(maps_as_pydicts="strict")
    ]
    worker = recipe.build()
    try:
        if recipe.kind == "describe" or not first:
            if first:
                worker.describe_many(first, progress=False)
            return recipe
        worker.classify_many(first, progress=False)  # a ConfigError raises
        built = worker.built_indexes()
        return replace(recipe, indexes=ray.put(built)) if built else recipe
    finally:
        worker.runner.blocking(worker.aclose())


READERS = {
    ".parquet": "read_parquet",
    ".jsonl": "read_json",
    ".ndjson": "read_json",
    ".csv": "read_csv",
}


@dataclass
class FileJob:
    """``llmcat classify|describe --ray``: a file of products in, a folder of Parquet files out
    (the input's columns and the result columns), on a Ray cluster."""

    recipe: WorkerRecipe
    #: None: a local cluster, started here and stopped at the end (or the cluster this process
    #: is already connected to)
    address: str | None
    workers: int | None = None  # None: one per CPU of the cluster

    def run(self, source: Path, folder: Path) -> tuple[int, int]:
        """Classify or describe every product of ``source`` into ``folder``; (items, errors)."""
        ray = need_ray()
        # Absolute: Ray's workers do not share this process's working directory.
        source, folder = source.resolve(), folder.resolve()
        reader = READERS.get(source.suffix.lower())
        if reader is None:
            raise ConfigError(f"--ray reads {', '.join(READERS)} files, not {source.name}")
        if not source.is_file():
            raise ConfigError(f"input file {source} does not exist")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ConfigError(
                f"{folder} exists and is not an empty folder: --ray writes a folder of Parquet "
                "files; name a new one"
            )
        started = not ray.is_initialized()  # else: the caller's connection, left open
        if started and self.address is None:
            ray.init(include_dashboard=False, log_to_driver=False)
        elif started:
            ray.init(address=self.address, log_to_driver=False)
        try:
            # Output files in input order, so that part-0 holds the first products.
            ray.data.DataContext.get_current().execution_options.preserve_order = True
            workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            # The products are read before the actors start and written with no CPU of their
            # own: with one actor per CPU, a read or write task waiting for a CPU would wait
            # for ever (the actors hold theirs until the end).
            dataset = getattr(ray.data, reader)(str(source)).materialize()
            # Blocks of one batch each, and at least one per actor, so that every actor gets
            # work (a file with one row group is one block, which one actor would take alone).
            batch = max(1, min(DEFAULT_BATCH_SIZE, -(-dataset.count() // workers)))
            dataset = dataset.repartition(target_num_rows_per_block=batch).materialize()
            results = _map(dataset, self.recipe, workers, batch, 1, 0)
            results.write_parquet(str(folder), ray_remote_args={"num_cpus": 0})
        finally:
            if started:
                ray.shutdown()
        return _tally(folder, self.recipe.prefix + "error")


def _tally(folder: Path, error_column: str) -> tuple[int, int]:
    """Items and error records in a folder of result Parquet files."""
    import pyarrow.parquet as pq

    table = pq.read_table(folder, columns=[error_column])
    return table.num_rows, table.num_rows - table.column(0).null_count


__all__ = ["BatchWorker", "FileJob", "WorkerRecipe", "classify_dataset", "describe_dataset"]
