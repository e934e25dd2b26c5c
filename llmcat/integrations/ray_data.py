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
is put in the object store for every actor to adopt instead of embedding it again. So are the
dataset's first ``SPREAD_SAMPLE`` rows: every actor reads the run from them (its estimated
accuracy and spread, ``Classifier.observe_catalogue``), so all scale their confidence alike, as
one process does with a stream's first rows (not each from its own first batch). Fitted trust
and supervised heads are files in the cache folder: actors on the driver's machine (or sharing
its cache folder) read them; others fit them again, deterministically.

Results equal the single-process run's item for item (given a stream, or a list of at most
``SPREAD_SAMPLE`` products: the same sample): the same workers, the same requests.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel

from llmcat.backends.batchfile import RELAY_SLOT, custom_id
from llmcat.classify.classifier import Classifier
from llmcat.config.options import ClassifyOptions, CopyOptions
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.io.columns import Columns
from llmcat.io.tables import CLASSIFICATION_COLUMNS, COPY_COLUMNS, row_record, with_arrow_results
from llmcat.listing.describer import Describer
from llmcat.taxonomy.tree import Taxonomy

if TYPE_CHECKING:
    from types import ModuleType

    import pyarrow as pa
    from pydantic import JsonValue
    from ray import ObjectRef
    from ray.data import Dataset
    from typing_extensions import Unpack

    from llmcat.backends.batchfile import RelaySlot
    from llmcat.config.overrides import ClassifierOverrides, DescriberOverrides
    from llmcat.embeddings.base import Matrix
    from llmcat.learning.examples import ExampleSource
    from llmcat.types import Classification, Product

log = logging.getLogger("llmcat")

#: rows handed to one worker call: enough to keep its concurrency busy, small enough to spread
DEFAULT_BATCH_SIZE = 256


def need_ray() -> ModuleType:
    """Import Ray (with Ray Data), or say which extra brings it."""
    try:
        import ray
        import ray.data  # Ray Data is a module of its own
    except ImportError:
        raise ConfigError(
            "Ray is needed for llmcat.integrations.ray_data: pip install 'llmcat[ray]'"
        ) from None
    return ray


@dataclass(frozen=True)
class WorkerRecipe:
    """Everything an actor needs to build its worker: plain, picklable values only (a backend
    instance or an embedder holds connections and models, so each actor makes its own)."""

    kind: str  # "classify" or "describe"
    options: ClassifyOptions | CopyOptions
    settings: Settings
    taxonomy: Taxonomy | None = None
    examples: ExampleSource | None = None
    base_urls: tuple[str, ...] = ()
    prefix: str = ""
    indexes: ObjectRef[dict[str, Matrix]] | None = (
        None  # an ObjectRef of Classifier.built_indexes(), set by the driver
    )
    #: an ObjectRef of the dataset's first rows, which every actor reads the run from (its
    #: estimated accuracy and spread), so that all scale their confidence alike; set by the driver
    sample: ObjectRef[list[dict[str, object]]] | None = None
    #: the keyword overrides of ``Classifier`` or ``Describer`` (``kind``)
    overrides: Mapping[str, object] = field(default_factory=dict)
    #: which columns of a row are which product fields (as the CLI's --columns/--attributes)
    input_columns: Columns = field(default_factory=Columns)

    def build(self, actor: int = 0) -> Classifier | Describer:
        """The worker of the ``actor``-th actor (which takes the matching server URL)."""
        settings = self.settings
        if self.base_urls:
            settings = settings.model_copy(
                update={"base_url": self.base_urls[actor % len(self.base_urls)]}
            )
        if self.kind == "describe":
            assert isinstance(self.options, CopyOptions)
            overrides = cast("DescriberOverrides", self.overrides)
            return Describer(self.options, settings=settings, **overrides)
        assert isinstance(self.options, ClassifyOptions) and self.taxonomy is not None
        chosen = cast("ClassifierOverrides", self.overrides)
        return Classifier(
            self.taxonomy, self.options, settings=settings, examples=self.examples, **chosen
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

    def __init__(self, recipe: WorkerRecipe, dealer: object = None) -> None:
        ray = need_ray()
        # the dealer is a Ray actor handle, whose methods Ray makes at run time
        number = ray.get(dealer.take.remote()) if dealer is not None else 0  # type: ignore[attr-defined]
        self.recipe = recipe
        self.worker = _ready(recipe, recipe.build(number))

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist(maps_as_pydicts="strict")
        records = [row_record(row, self.recipe.input_columns) for row in rows]
        results: Sequence[BaseModel]
        if isinstance(self.worker, Describer):
            results = self.worker.describe_many(records, progress=False)
        else:
            results = self.worker.classify_many(records, progress=False)
        return with_arrow_results(batch, results, self.recipe.columns, self.recipe.prefix)


def classify_dataset(
    dataset: Dataset,
    taxonomy: Taxonomy | Sequence[str],
    options: ClassifyOptions | None = None,
    *,
    settings: Settings | None = None,
    examples: ExampleSource | None = None,
    workers: int = 2,
    base_urls: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = 1,
    num_gpus: float = 0,
    prefix: str = "",
    columns: Columns | None = None,
    **overrides: Unpack[ClassifierOverrides],
) -> Dataset:
    """``dataset`` with each row's classification in new columns (``category_id``, ``path``,
    ``confidence``, ``needs_review``, ``alternatives``, ``error``; each ``prefix + name``),
    computed by ``workers`` actors. Options, settings, examples and keyword overrides are those of
    ``Classifier``; ``base_urls`` shares the actors out over several servers; ``num_gpus=1`` gives
    each actor a GPU (the ``vllm`` backend then runs one engine per GPU); ``columns`` says which
    columns are which product fields (default ``Columns()``: the product's own, as the CLI).

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
        input_columns=columns or Columns(),
    )
    return _map(dataset, recipe, workers, batch_size, num_cpus, num_gpus)


def describe_dataset(
    dataset: Dataset,
    options: CopyOptions | None = None,
    *,
    settings: Settings | None = None,
    workers: int = 2,
    base_urls: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = 1,
    num_gpus: float = 0,
    prefix: str = "",
    columns: Columns | None = None,
    **overrides: Unpack[DescriberOverrides],
) -> Dataset:
    """``dataset`` with each row's listing copy in new columns (``copy_title``, ``copy_bullets``,
    ``copy_body``, ``copy_flagged``, ``copy_findings``, ``copy_source``, ``error``); see ``classify_dataset``."""
    recipe = WorkerRecipe(
        "describe",
        options or CopyOptions(),
        settings or Settings(),
        base_urls=tuple(base_urls),
        prefix=prefix,
        overrides=dict(overrides),
        input_columns=columns or Columns(),
    )
    return _map(dataset, recipe, workers, batch_size, num_cpus, num_gpus)


def _map(
    dataset: Dataset,
    recipe: WorkerRecipe,
    workers: int,
    batch_size: int,
    num_cpus: float,
    num_gpus: float,
) -> Dataset:
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


def _ready(recipe: WorkerRecipe, worker: Classifier | Describer) -> Classifier | Describer:
    """``worker`` with the driver's embeddings adopted and the run read from the driver's
    sample (``Classifier.observe_catalogue``: a no-op unless its plan scales to the run)."""
    ray = need_ray()
    if isinstance(worker, Describer):
        return worker  # the driver sets neither for copy
    if recipe.indexes is not None:
        worker.adopt_indexes(ray.get(recipe.indexes))
    if recipe.sample is not None:
        worker.observe_catalogue(ray.get(recipe.sample))
    return worker


def _warmed(dataset: Dataset, recipe: WorkerRecipe) -> WorkerRecipe:
    """The recipe after the driver has run its first product: configuration errors surface here,
    the embeddings it built go to the object store, and so do the first ``SPREAD_SAMPLE`` rows
    every actor reads the run from (as one process reads a stream's)."""
    from llmcat.classify.classifier import SPREAD_SAMPLE

    ray = need_ray()
    head = dataset.limit(1 if recipe.kind == "describe" else SPREAD_SAMPLE)
    rows = [
        row_record(row, recipe.input_columns)
        for table in ray.get(head.to_arrow_refs())
        for row in table.to_pylist(maps_as_pydicts="strict")
    ]
    worker = recipe.build()
    try:
        if not rows:
            return recipe
        if isinstance(worker, Describer):
            worker.describe_many(rows, progress=False)
            return recipe
        worker.classify_many(rows[:1], progress=False)  # a ConfigError raises
        built = worker.built_indexes()
        return replace(recipe, indexes=ray.put(built) if built else None, sample=ray.put(rows))
    finally:
        worker.close()


#: the columns the HTTP path carries between its stages (JSON text), dropped at the end
REQUEST, RESPONSE = "__llmcat_request", "__llmcat_response"


class _Slotted:
    """A worker as the runner's job, with the relay slot of each item set around it: results
    come back as ``(result, slot)``, in input order."""

    def __init__(self, worker: Classifier, answers: Sequence[dict[str, JsonValue]]) -> None:
        self.worker = worker
        self.answers = answers

    async def run(self, product: Product) -> tuple[Classification, RelaySlot]:
        slot: RelaySlot = {"responses": dict(self.answers[int(product.id)])}
        token = RELAY_SLOT.set(slot)
        try:
            return await self.worker.run(product), slot
        finally:
            RELAY_SLOT.reset(token)

    def failed(self, product_id: str, error: BaseException) -> tuple[Classification, RelaySlot]:
        return self.worker.failed(product_id, error), {}


class RelayWorker:
    """The two ends of the HTTP path, as a ``map_batches`` actor. ``capture``: each row gains
    the first request its product makes (``REQUEST``; None when it makes none: an input error, a
    product settled without the model). ``answer``: each row's ``RESPONSE`` answers that request;
    the row gains the result columns, and any later request is sent by the worker itself."""

    def __init__(self, recipe: WorkerRecipe, mode: str) -> None:
        need_ray()
        self.recipe, self.mode = recipe, mode
        worker = recipe.build()
        assert isinstance(worker, Classifier)  # the HTTP path classifies only
        self.worker = worker
        self.worker.relay(mode)
        _ready(recipe, self.worker)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        rows = batch.to_pylist(maps_as_pydicts="strict")
        # Positions as ids while relaying: unique within the batch, whatever the caller's ids.
        records = [
            {**row_record(row, self.recipe.input_columns), "id": str(i)}
            for i, row in enumerate(rows)
        ]
        answers: list[dict[str, JsonValue]] = [{} for _ in rows]
        if self.mode == "answer":
            for i, row in enumerate(rows):
                if row.get(REQUEST) and row.get(RESPONSE):
                    key = custom_id(json.loads(row[REQUEST]))
                    answers[i] = {key: json.loads(row[RESPONSE])}
        for record in records:
            record.pop(REQUEST, None)
            record.pop(RESPONSE, None)
        job = _Slotted(self.worker, answers)
        done = self.worker.run_all(records, job, label="relay")
        if self.mode == "capture":
            first = [
                json.dumps(slot["requests"][0]) if slot.get("requests") else None
                for _, slot in done
            ]
            return batch.append_column(REQUEST, pa.array(first, type=pa.string()))
        results = [result for result, _ in done]
        kept = batch.drop_columns([c for c in (REQUEST, RESPONSE) if c in batch.column_names])
        return with_arrow_results(kept, results, self.recipe.columns, self.recipe.prefix)


def classify_dataset_http(
    dataset: Dataset,
    taxonomy: Taxonomy | Sequence[str],
    options: ClassifyOptions | None = None,
    *,
    base_url: str,
    settings: Settings | None = None,
    workers: int = 2,
    batch_size: int = 64,
    qps: int | None = None,
    prefix: str = "",
    columns: Columns | None = None,
    **overrides: object,
) -> Dataset:
    """``classify_dataset`` with the model requests sent by ``ray.data.llm``'s HTTP request
    processor to the OpenAI-compatible server at ``base_url``.

    llmcat renders each product's request (messages, the per-row structured-output constraint,
    the logprob request, sampling: the body the ``openai`` backend sends), the processor POSTs it
    (``workers`` actors, ``batch_size`` rows each, at most ``qps`` requests per second), and
    llmcat reads the answer into the same validated result. A later request of the same product
    (a re-ask, the next level of ``hierarchical``) is sent by llmcat's worker to the same server;
    products that ask the model nothing skip the processor. Rows come back with the answered
    ones first: match them by your own id column. Examples (fitted trust) are not supported on
    this path: use ``classify_dataset``."""
    ray = need_ray()
    import pyarrow as pa
    from ray.data.expressions import col
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    if overrides.get("examples") is not None:
        raise ConfigError("examples are not supported on the HTTP path: use classify_dataset")
    chosen = taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.from_labels(list(taxonomy))
    base = (settings or Settings()).model_copy(update={"base_url": base_url})
    recipe = WorkerRecipe(
        "classify",
        options or ClassifyOptions(),
        base,
        taxonomy=chosen,
        prefix=prefix,
        overrides=dict(overrides),
        input_columns=columns or Columns(),
    )
    recipe = _warmed(dataset, recipe)
    pool = ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1)

    def stage(data: Dataset, mode: str) -> Dataset:
        return data.map_batches(
            RelayWorker,
            fn_constructor_args=(recipe, mode),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=pool,
            udf_modifying_row_count=False,
        )

    def unanswered(table: pa.Table) -> pa.Table:
        return table.append_column(RESPONSE, pa.nulls(table.num_rows, type=pa.string()))

    # Three phases, each materialized: the actors of one never wait for a CPU another holds.
    # Filtering and the HTTP stage are I/O: a quarter of a CPU each.
    light = {"num_cpus": 0.25}
    rendered = stage(dataset, "capture").materialize()
    retry = recipe.settings.retry
    processor = build_processor(
        HttpRequestProcessorConfig(
            url=base_url.rstrip("/") + "/chat/completions",
            headers=(
                {"Authorization": f"Bearer {recipe.settings.api_key}"}
                if recipe.settings.api_key
                else None
            ),
            batch_size=batch_size,
            concurrency=workers,
            qps=qps,
            max_retries=retry.attempts - 1 if retry is not None else 2,
            http_request_stage=light,
        ),
        preprocess=lambda row: {"payload": json.loads(row[REQUEST])},
        postprocess=lambda row: {
            **{k: v for k, v in row.items() if k not in ("payload", "http_response")},
            RESPONSE: json.dumps(row["http_response"]),
        },
        preprocess_map_kwargs=light,
        postprocess_map_kwargs=light,
    )
    asked = rendered.filter(expr=col(REQUEST).is_not_null(), **light)
    answered = processor(asked).materialize()
    skipped = (
        rendered.filter(expr=col(REQUEST).is_null(), **light)
        .map_batches(unanswered, batch_format="pyarrow", **light)
        .materialize()
    )
    return stage(answered.union(skipped), "answer")


#: Ray's reader per input kind. Not JSONL: Arrow turns each line's attributes object into a
#: struct, whose fields have one order for every row, and a product's first attributes are part
#: of its text; a Parquet map (``python -m evals export``, ``tables.products_table``) keeps it.
READERS = {".parquet": "read_parquet", ".csv": "read_csv"}


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
            raise ConfigError(
                f"--ray reads {' and '.join(READERS)} files, not {source.name} (JSONL: convert it "
                "to Parquet with the attributes as a map, which keeps each product's own order)"
            )
        if not source.is_file():
            raise ConfigError(f"input file {source} does not exist")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ConfigError(
                f"{folder} exists and is not an empty folder: --ray writes a folder of Parquet "
                "files; name a new one"
            )
        started = not ray.is_initialized()  # else: the caller's connection, left open
        # Ray's own logs at llmcat's level (-q: errors only, -v: its INFO lines too).
        ours = logging.getLogger("llmcat").getEffectiveLevel()
        level = logging.INFO if ours <= logging.INFO else max(ours, logging.WARNING)
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(level)
        if started and self.address is None:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level=level)
        elif started:
            ray.init(address=self.address, log_to_driver=False, logging_level=level)
        ray.data.DataContext.get_current().enable_progress_bars = level < logging.ERROR
        try:
            # Output files roughly in input order (part-0 holds the first products). Rows are not
            # guaranteed to keep their input order: Ray 2.60 sometimes joins the pieces of a
            # block out of order (p0-p6, p14, p7-p13); match results to products by id.
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


__all__ = [
    "BatchWorker",
    "FileJob",
    "RelayWorker",
    "WorkerRecipe",
    "classify_dataset",
    "classify_dataset_http",
    "describe_dataset",
]
