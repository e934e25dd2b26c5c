"""The HTTP app in process (httpx's ASGI transport): answers, validation, limits, keys,
deadline, back-pressure, metrics. tests/api/test_server.py runs the real server process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from llmcat.api import ApiConfig, Metrics, Service, create_app
from llmcat.attributes.extractor import Extractor
from llmcat.classify.classifier import Classifier
from llmcat.cli.api import recipe_from
from llmcat.cli.main import build_parser
from llmcat.errors import ConfigError
from llmcat.listing.describer import Describer
from llmcat.types import Classification, Product
from tests.attributes.conftest import synthetic, write_jsonl
from tests.attributes.test_shopify import ATTRIBUTES, CATEGORIES

LABELS = ["Shoes", "Toys", "Mobile Phones"]
KEY = "k3y-that-must-never-be-echoed"

Client = Callable[[httpx.AsyncClient, Service], Awaitable[None]]


def classifier() -> Classifier:
    return Classifier(LABELS, strategy="embedding", embedding_model="hashing")


def served(
    check: Client,
    classifier: Classifier | None = None,
    extractor: Extractor | None = None,
    **config: Any,
) -> Service:
    """Run ``check`` against the app (its lifespan included) once the service is ready."""
    service = Service(
        classifier or globals()["classifier"](),
        ApiConfig(**config),
        Metrics(),
        describer=Describer,
        extractor=extractor,
    )
    app = create_app(service)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            for _ in range(500):
                if service.ready or service.failure:
                    break
                await asyncio.sleep(0.01)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                await check(client, service)

    asyncio.run(main())
    return service


@contextlib.asynccontextmanager
async def ready_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` (its lifespan running) once ``/readyz`` says ready."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            while (await client.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.01)
            yield client


def test_one_product_answers_its_record_and_a_list_answers_in_order() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        one = await client.post("/v1/classify", json={"title": "red running shoes", "id": "a"})
        assert one.status_code == 200
        assert one.json()["product_id"] == "a"
        assert one.json()["path"] == ["Shoes"]
        titles = ["lego bricks set", "red running shoes", "android smartphone 128 GB", "toy car"]
        many = await client.post(
            "/v1/classify", json=[{"title": t, "id": n} for n, t in enumerate(titles)]
        )
        assert many.status_code == 200
        assert many.headers["x-llmcat-failed"] == "0"
        records = many.json()
        assert [r["product_id"] for r in records] == ["0", "1", "2", "3"]
        # each answer is the one the product gets alone
        for title, record in zip(titles, records, strict=True):
            alone = (await client.post("/v1/classify", json={"title": title})).json()
            assert record["path"] == alone["path"]
        # without ids, the position in the request (from 1)
        unnamed = await client.post("/v1/classify", json=[{"title": "x"}, {"title": "y"}])
        assert [r["product_id"] for r in unnamed.json()] == ["1", "2"]

    served(check)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": 5}, "title"),  # no coercion: a number is not text
        ({"title": ["shoes"]}, "title"),
        ({"title": "x", "brand": 7}, "brand"),
        ({"title": "x", "attributes": {"size": 42}}, "attributes.size"),
        ({"title": "x", "image_urls": "http://a/b.jpg"}, "image_urls"),
        ({"title": "   "}, "title"),
        ({"brand": "Nike"}, "title"),
        ({"title": "x", "colour": "red"}, "colour"),  # unknown fields are named, not dropped
        ({"title": "x" * 2_001}, "title"),
        ({"title": "x", "id": 1.5}, "id"),
        ({"title": "x", "id": 10**19}, "id"),
        ({"title": "x", "id": True}, "id"),
        ([{"title": "ok"}, {"title": 3}], "[1].title"),
        ("just a title", "body"),
    ],
)
def test_invalid_input_is_422_naming_the_field(body: object, field: str) -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        answer = await client.post("/v1/classify", json=body)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["kind"] == "invalid"
        assert field in [f["field"] for f in error["fields"]]
        assert not any("constrained" in f["field"] for f in error["fields"])  # pydantic's words
        assert "Traceback" not in answer.text

    served(check)


def test_broken_json_and_empty_lists_are_422() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        broken = await client.post(
            "/v1/classify", content=b'{"title": ', headers={"content-type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["error"]["kind"] == "invalid"
        empty = await client.post("/v1/classify", json=[])
        assert empty.status_code == 422
        assert "no product" in empty.json()["error"]["message"]

    served(check)


def test_limits_on_the_list_and_the_body_are_413() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        many = await client.post("/v1/classify", json=[{"title": "x"}] * 5)
        assert many.status_code == 413
        assert many.json()["error"] == {
            "kind": "too_many_items",
            "message": "a list of at most 4 products; this one holds 5",
            "field": "body",
        }
        big = await client.post("/v1/classify", json={"title": "x", "description": "y" * 3_000})
        assert big.status_code == 413
        assert big.json()["error"]["kind"] == "too_large"

        async def chunks() -> Any:  # no Content-Length: counted while read
            yield b'{"title": "x", "description": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        streamed = await client.post("/v1/classify", content=chunks())
        assert streamed.status_code == 413

    served(check, max_items=4, max_body_bytes=2_000)


def test_keys_guard_everything_but_the_probes_and_are_never_echoed() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        body = {"title": "red running shoes"}
        assert (await client.post("/v1/classify", json=body)).status_code == 401
        wrong = await client.post(
            "/v1/classify", json=body, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        basic = await client.post("/v1/classify", json=body, headers={"Authorization": KEY})
        assert basic.status_code == 401  # the key without the Bearer scheme
        good = await client.post(
            "/v1/classify", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert good.status_code == 200
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        for answer in (wrong, basic, good, metrics):
            assert KEY not in answer.text
        assert 'llmcat_api_errors_total{kind="unauthorised"} 4.0' in metrics.text

    served(check, api_keys=(KEY, "another-key"))


class Slow(Classifier):
    """Takes ``seconds`` per product, cancellably; counts the products it finished."""

    def __init__(self, seconds: float) -> None:
        super().__init__(LABELS, strategy="embedding", embedding_model="hashing")
        self.seconds = seconds
        self.finished = 0
        self.cancelled = 0

    async def aclassify(self, product: Any) -> Classification:
        if isinstance(product, Product) and product.id == "warm-up":
            return await super().aclassify(product)
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return await super().aclassify(product)


def test_a_request_past_its_deadline_is_504_and_its_work_cancelled() -> None:
    slow = Slow(5.0)

    async def check(client: httpx.AsyncClient, service: Service) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await client.post("/v1/classify", json=[{"title": "a"}, {"title": "b"}])
        assert answer.status_code == 504
        assert loop.time() - started < 1.5
        assert answer.json()["error"]["kind"] == "deadline"
        assert service.pending == 0

    served(check, slow, deadline=0.3)
    assert (slow.finished, slow.cancelled) == (0, 2)


def test_a_full_queue_is_503_with_retry_after_and_admits_again_once_drained() -> None:
    slow = Slow(0.5)

    async def check(client: httpx.AsyncClient, service: Service) -> None:
        first = asyncio.ensure_future(client.post("/v1/classify", json=[{"title": "a"}] * 3))
        while service.pending < 3:
            await asyncio.sleep(0.01)
        refused = await client.post("/v1/classify", json=[{"title": "b"}] * 2)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["kind"] == "overloaded"
        assert (await client.post("/v1/classify", json={"title": "c"})).status_code == 200
        assert (await first).status_code == 200
        assert (await client.post("/v1/classify", json=[{"title": "d"}] * 4)).status_code == 200

    served(check, slow, max_pending=4, max_items=4, retry_after=2)


def test_readyz_says_when_start_up_is_done_and_requests_are_answered_meanwhile() -> None:
    class Starting(Classifier):
        gate: asyncio.Event

        async def prepare(self) -> None:
            await self.gate.wait()

    starting = Starting(LABELS, strategy="embedding", embedding_model="hashing")
    service = Service(starting, ApiConfig(), Metrics())
    app = create_app(service)

    async def main() -> None:
        starting.gate = asyncio.Event()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                not_yet = await client.get("/readyz")
                assert not_yet.status_code == 503
                assert not_yet.json()["reason"].startswith("starting")
                assert (await client.get("/healthz")).status_code == 200
                meanwhile = await client.post("/v1/classify", json={"title": "toy"})
                assert meanwhile.status_code == 200
                starting.gate.set()
                while not service.ready:
                    await asyncio.sleep(0.01)
                assert (await client.get("/readyz")).status_code == 200

    asyncio.run(main())


def test_describe_answers_copy() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        answer = await client.post(
            "/v1/describe", json={"title": "Nike running shoes", "brand": "Nike", "id": "s1"}
        )
        assert answer.status_code == 200
        record = answer.json()
        assert record["product_id"] == "s1"
        assert record["title"]
        assert record["error"] is None

    served(check)


def test_extract_answers_values_read_from_each_products_text(tmp_path: Path) -> None:
    rows = synthetic(90, 0)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    tests = synthetic(12, 1)

    async def check(client: httpx.AsyncClient, service: Service) -> None:
        assert (await client.get("/readyz")).status_code == 200  # the tagger is learned
        bodies = [
            {"title": r["input"], "id": f"s{n}", "attributes": {"category": r["category"]}}
            for n, r in enumerate(tests)
        ]
        many = await client.post("/v1/extract", json=bodies)
        assert many.status_code == 200
        records = many.json()
        assert [r["product_id"] for r in records] == [f"s{n}" for n in range(len(tests))]
        for body, record in zip(bodies, records, strict=True):
            assert record["error"] is None and record["category"] == "Shoes"
            found = {k: v for k, v in record["attributes"].items() if v["value"] is not None}
            assert "Brand" in found
            for answer in found.values():  # a run of the title, where it says
                source = answer["source"]
                assert body["title"][source["start"] : source["end"]] == answer["value"]
        one = await client.post("/v1/extract", json=bodies[1])
        assert one.status_code == 200 and one.json() == records[1]
        # a category the examples do not know is this product's error, said as a 422
        unknown = await client.post(
            "/v1/extract", json={"title": "Acme Red", "attributes": {"category": "Boats"}}
        )
        assert unknown.status_code == 422
        assert "Boats" in unknown.json()["error"]["message"]
        # classify is served beside it
        assert (await client.post("/v1/classify", json={"title": "shoes"})).status_code == 200

    extractor = Extractor(examples=train, cache=False, progress=False)
    served(check, extractor=extractor)


def test_shopifys_taxonomy_serves_shopifys_attributes_in_the_chosen_category(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shopify_categories_2024-10.txt").write_text(CATEGORIES, encoding="utf-8")
    (tmp_path / "shopify_attributes_2025-03.json").write_text(
        json.dumps(ATTRIBUTES), encoding="utf-8"
    )
    monkeypatch.setenv("LLMCAT_TAXONOMY_DIR", str(tmp_path))
    command = ["api", "--taxonomy", "shopify", "--strategy", "embedding"]
    args = build_parser().parse_args([*command, "--embedding-model", "hashing", "--no-cache"])
    recipe = recipe_from(args)
    assert recipe.extract is not None and recipe.extract.by_category

    async def main() -> None:
        async with ready_client(recipe.app()) as client:
            body = {"title": "Black cotton t-shirt clothing, XL", "id": "t"}
            answer = (await client.post("/v1/extract", json=body)).json()
            chosen = (await client.post("/v1/classify", json=body)).json()
        assert answer["category_id"] == chosen["category_id"] == "aa-1"
        allowed = {v for a in ATTRIBUTES["attributes"].values() for v in a["values"]}  # type: ignore[attr-defined]
        given = {a["value"] for a in answer["attributes"].values()} - {None}
        assert given and given <= allowed

    asyncio.run(main())
    # another taxonomy without attribute flags serves no extraction
    other = build_parser().parse_args(["api", "--labels", "Shoes,Toys"])
    assert recipe_from(other).extract is None
    with pytest.raises(ConfigError, match="nothing to serve"):
        recipe_from(build_parser().parse_args(["api"]))


def test_a_server_of_attributes_alone_extracts_and_says_classify_is_not_served(
    tmp_path: Path,
) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", synthetic(60, 0))
    args = build_parser().parse_args(["api", "--attribute-examples", str(train), "--no-cache"])
    recipe = recipe_from(args)
    assert recipe.taxonomy is None

    async def main() -> None:
        async with ready_client(recipe.app()) as client:
            body = {"title": "Acme Men's Loafer,Red,9 D US", "attributes": {"category": "Shoes"}}
            values = await client.post("/v1/extract", json=body)
            assert values.status_code == 200
            assert values.json()["attributes"]["Color"]["value"] == "Red"
            refused = await client.post("/v1/classify", json=body)
            assert refused.status_code == 404
            assert "--labels" in refused.json()["error"]["message"]

    asyncio.run(main())


def test_extract_without_attributes_is_404_saying_how_to_serve_it() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        answer = await client.post("/v1/extract", json={"title": "Acme red shoe"})
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["kind"] == "not_served" and "--attribute-examples" in error["message"]

    served(check)


def test_metrics_count_requests_products_batches_and_errors() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        titles: Sequence[str] = [f"product {n}" for n in range(8)]
        answers = await asyncio.gather(
            *(client.post("/v1/classify", json={"title": t}) for t in titles)
        )
        assert {a.status_code for a in answers} == {200}
        await client.post("/v1/classify", json={"title": 1})
        text = (await client.get("/metrics")).text
        assert 'llmcat_api_requests_total{endpoint="/v1/classify",status="200"} 8.0' in text
        assert 'llmcat_api_requests_total{endpoint="/v1/classify",status="422"} 1.0' in text
        assert 'llmcat_api_products_total{endpoint="/v1/classify"} 8.0' in text
        assert 'llmcat_api_errors_total{kind="invalid"} 1.0' in text
        assert "llmcat_api_request_seconds_bucket" in text
        batches = [
            line for line in text.splitlines() if line.startswith("llmcat_api_embed_batch_size_sum")
        ]
        assert batches and float(batches[0].split()[-1]) >= 8  # the products' texts, embedded
        await client.get("/nowhere")
        text = (await client.get("/metrics")).text
        assert 'endpoint="other",status="404"' in text  # unknown paths share one label

    served(check)


def test_openapi_schema_names_the_endpoints_the_product_fields_and_every_answer() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        schema = (await client.get("/openapi.json")).json()
        paths = {"/v1/classify", "/v1/describe", "/v1/extract", "/healthz", "/readyz", "/metrics"}
        assert paths <= set(schema["paths"])
        product = schema["components"]["schemas"]["ProductIn"]
        assert set(product["properties"]) == {
            "id",
            "title",
            "brand",
            "description",
            "attributes",
            "image_urls",
        }
        # each answer's body is described: the record or a list of them, else the error body
        for path, record in [("/v1/classify", "Classification"), ("/v1/describe", "Description"),
                             ("/v1/extract", "Extraction")]:  # fmt: skip
            answers = schema["paths"][path]["post"]["responses"]
            ok = answers["200"]["content"]["application/json"]["schema"]["anyOf"]
            refs = [ok[0]["$ref"], ok[1]["items"]["$ref"]]
            assert refs == [f"#/components/schemas/{record}"] * 2
            for status in ("401", "413", "422", "503", "504"):
                error = answers[status]["content"]["application/json"]["schema"]
                assert error["$ref"] == "#/components/schemas/ErrorBody"
        json.dumps(schema)

    served(check)


def test_work_that_would_wait_past_the_deadline_is_refused_at_once() -> None:
    import time
    from collections import deque

    from llmcat.api import Overloaded

    service = Service(classifier(), ApiConfig(deadline=0.5), Metrics())
    assert service.throughput() is None  # nothing answered yet: only max_pending applies
    now = time.monotonic()
    service._answered = deque([(now - 2.0, 10), (now - 1.0, 10)])
    assert service.throughput() == pytest.approx(10.0, rel=0.01)  # 20 products in 2 s
    with service._admitted(2):  # an idle server admits, whatever the rate
        service.pending = 4  # 4 ahead: 0.6 s at 10/s, past the 0.5 s deadline
        with pytest.raises(Overloaded, match="past the deadline"), service._admitted(2):
            pass
        service.pending = 2  # 2 + 2 ahead: 0.4 s
        with service._admitted(2):
            pass
    # a slow server (fewer than 20 products in the last 10 s) is measured over its last 20
    service._answered = deque([(now - 100.0, 5), (now - 60.0, 10), (now - 30.0, 10)])
    assert service.throughput() == pytest.approx(20 / 60, rel=0.01)
    service._answered = deque([(now - 400.0, 30)])  # forgotten after THROUGHPUT_MEMORY
    assert service.throughput() is None


def test_every_error_has_the_one_shape_and_a_slow_body_is_408() -> None:
    async def check(client: httpx.AsyncClient, _: Service) -> None:
        missing = await client.get("/nowhere")
        assert (missing.status_code, missing.json()["error"]["kind"]) == (404, "not_found")
        wrong = await client.get("/v1/classify")
        assert (wrong.status_code, wrong.json()["error"]["kind"]) == (405, "method_not_allowed")
        broken = await client.post(
            "/v1/classify",
            content=b'{"title": "x",,}',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 422
        assert [f["field"] for f in broken.json()["error"]["fields"]] == ["body"]
        long_name = "n" * 5_000
        unknown = await client.post("/v1/classify", json={"title": "x", long_name: "y"})
        assert unknown.status_code == 422
        assert len(unknown.text) < 2_000  # the name is not echoed whole
        huge_id = await client.post("/v1/classify", json={"title": "x", "id": 10**40})
        assert huge_id.status_code == 422

        async def trickle() -> Any:
            yield b'{"title": '
            await asyncio.sleep(1.0)  # past the 0.5 s deadline
            yield b'"x"}'

        slow = await client.post("/v1/classify", content=trickle())
        assert (slow.status_code, slow.json()["error"]["kind"]) == (408, "slow_body")

    served(check, deadline=0.5)
