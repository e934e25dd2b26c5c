"""The ASGI app (FastAPI): the endpoints over a ``Service``; see docs/api.md for each status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any, Union

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmcat._version import __version__
from llmcat.api.middleware import BodyLimit, KeyCheck, Timing
from llmcat.api.schema import ErrorBody, ProductIn, error_body
from llmcat.api.service import DeadlineExceeded, NotServed, Overloaded, Service, status_of
from llmcat.errors import EndpointError
from llmcat.redact import redact
from llmcat.types import Classification, Description, Extraction, Product

log = logging.getLogger(__name__)

#: the error kind of the HTTP errors Starlette raises itself
HTTP_KINDS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
#: characters of a field's name an error repeats (an unknown field may be any length)
MAX_FIELD_NAME = 100
#: union branches pydantic names in an error's location; the caller never wrote them
_BRANCHES = {"ProductIn", "list[ProductIn]"}
#: what pydantic calls a member of a field's union (``str | int | None``)
_UNION_TAG = re.compile(
    r"(constrained-str|constrained-int|str|int|bool|float|none|(list|dict|function-\w+)\[.*\])"
)

Products = Annotated[
    ProductIn | list[ProductIn],
    Body(description="One product, or a list of them (answered in the same order)."),
]


def create_app(service: Service, *, warm_before_serving: bool = False) -> FastAPI:
    """The app: ``POST /v1/classify``, ``/v1/describe``, ``/v1/extract``, ``GET /healthz``,
    ``/readyz``, ``/metrics`` and the OpenAPI schema. ``service.start`` runs in the background from start-up
    (``/healthz`` answers meanwhile), or, with ``warm_before_serving``, before the app takes
    requests (a Ray Serve replica: Serve routes to it only once it is warm)."""
    config = service.config
    metrics = service.metrics

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warm = asyncio.create_task(service.start())
        warm.add_done_callback(_log_failure)
        if warm_before_serving:
            await asyncio.shield(warm)
        try:
            yield
        finally:
            warm.cancel()
            await service.aclose()
            # after uvicorn has let the requests in flight finish: proof that none was dropped
            unanswered = metrics.received - metrics.finished
            log.log(
                logging.ERROR if unanswered else logging.INFO,
                "stopped: %d requests to /v1/ received, %d of them unanswered",
                metrics.received,
                unanswered,
            )

    app = FastAPI(
        title="llmcat",
        version=__version__,
        summary="Products into categories, listing copy, attribute values; one product or a list "
        "per request.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _fields(exc.errors())
        metrics.errors.labels("invalid").inc()
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return JSONResponse(error_body("invalid", message, fields=fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 (a body that is not JSON text at all), 404, 405: in the one error shape
        kind = HTTP_KINDS.get(exc.status_code, "http")
        metrics.errors.labels(kind).inc()
        return JSONResponse(
            error_body(kind, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # the error's kind and message, never a traceback; the log has the rest
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        metrics.errors.labels("internal").inc()
        message = f"{type(exc).__name__}: {redact(str(exc))}"
        return JSONResponse(error_body("internal", message), status_code=500)

    async def answer(
        body: ProductIn | list[ProductIn],
        work: Callable[[Sequence[Product]], Awaitable[Sequence[BaseModel]]],
    ) -> Response:
        many = isinstance(body, list)
        items = body if isinstance(body, list) else [body]
        if not items:
            metrics.errors.labels("invalid").inc()
            return JSONResponse(
                error_body("invalid", "the list holds no product", fields=[]), status_code=422
            )
        if len(items) > config.max_items:
            metrics.errors.labels("too_many_items").inc()
            return JSONResponse(
                error_body(
                    "too_many_items",
                    f"a list of at most {config.max_items} products; this one holds {len(items)}",
                    field="body",
                ),
                status_code=413,
            )
        products = [item.product(n) for n, item in enumerate(items, 1)]
        try:
            records = await work(products)
        except Overloaded as exc:
            metrics.errors.labels("overloaded").inc()
            return JSONResponse(
                error_body("overloaded", str(exc)),
                status_code=503,
                headers={"Retry-After": str(config.retry_after)},
            )
        except EndpointError as exc:  # the model server is down or refuses this server
            metrics.errors.labels("model_server").inc()
            return JSONResponse(error_body("model_server", redact(str(exc))), status_code=502)
        except DeadlineExceeded as exc:
            metrics.errors.labels("deadline").inc()
            return JSONResponse(
                error_body("deadline", str(exc), deadline=config.deadline), status_code=504
            )
        except NotServed as exc:
            metrics.errors.labels("not_served").inc()
            return JSONResponse(error_body("not_served", str(exc)), status_code=404)
        if many:
            failed = sum(1 for r in records if getattr(r, "error", None) is not None)
            return JSONResponse(
                [r.model_dump(mode="json") for r in records],
                headers={"X-Llmcat-Failed": str(failed)},
            )
        record = records[0]
        return JSONResponse(record.model_dump(mode="json"), status_code=status_of(record))  # type: ignore[arg-type]

    @app.post(
        "/v1/classify",
        summary="Classify one product or a list",
        responses=_statuses(Classification, "The result record"),
    )
    async def classify(body: Products) -> Response:
        return await answer(body, service.classify)

    @app.post(
        "/v1/describe",
        summary="Listing copy for one product or a list",
        responses=_statuses(Description, "The listing copy"),
    )
    async def describe(body: Products) -> Response:
        return await answer(body, service.describe)

    @app.post(
        "/v1/extract",
        summary="Attribute values of one product or a list",
        responses=_statuses(Extraction, "The attribute values"),
    )
    async def extract(body: Products) -> Response:
        return await answer(body, service.extract)

    @app.get("/healthz", summary="Alive (no key needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", summary="Ready to answer: models loaded, model server reachable")
    async def readyz() -> JSONResponse:
        ready, why = await service.readiness()
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "reason": why},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # ASGI middleware, innermost first: the body limit, the key check, then timing outermost
    app.add_middleware(
        BodyLimit, limit=config.max_body_bytes, metrics=metrics, timeout=config.deadline
    )
    app.add_middleware(KeyCheck, keys=config.api_keys, metrics=metrics)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(Timing, metrics=metrics)
    return app


def _statuses(record: type[BaseModel], what: str) -> dict[int | str, dict[str, Any]]:
    """An endpoint's answers for the OpenAPI schema: ``record`` (or a list of them) on 200,
    the one error body otherwise (docs/api.md's status table)."""
    errors = {
        401: "No valid API key",
        404: "Not served: the server started without what this endpoint needs",
        413: "Body or list too large",
        422: "Invalid product (the field is named), or this product's own input refused",
        502: "The model server failed for this product",
        503: "Overloaded: retry after Retry-After seconds",
        504: "The deadline passed; the work was cancelled",
    }
    return {
        200: {
            "model": Union[record, list[record]],  # type: ignore[valid-type]  # noqa: UP007
            "description": f"{what} (or a list, in order; a failure carries 'error', and "
            "X-Llmcat-Failed counts them)",
        },
        **{status: {"model": ErrorBody, "description": why} for status, why in errors.items()},
    }


def _fields(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Each validation error as the field it names (``title``, ``[3].brand``) and why. Where
    pydantic reports both readings of the body (one product, a list), only the one the body
    took: the list's when an error sits inside an item of it, else the product's."""
    rows = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        branch = next((part for part in location if part in _BRANCHES), None)
        rows.append((branch, [part for part in location if part not in _BRANCHES], error))
    if {branch for branch, _, _ in rows} >= _BRANCHES:
        in_list = any(
            branch == "list[ProductIn]" and loc[1:2] and loc[1].isdigit() for branch, loc, _ in rows
        )
        took = "list[ProductIn]" if in_list else "ProductIn"
        rows = [row for row in rows if row[0] in (None, took)]
    fields = []
    for _, location, error in rows:
        parts = location[1:] if location[:1] == ["body"] else location
        parts = _without_union_tags(parts)
        name = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts).lstrip(".")
        if error.get("type") == "json_invalid":
            name = "body"  # its location is a character offset, not a field
        name = name[:MAX_FIELD_NAME]
        fields.append(
            {
                "field": name or "body",
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return fields


def _without_union_tags(parts: list[str]) -> list[str]:
    """A field's location without the union member pydantic names after it (``id`` reads as
    ``id.constrained-str`` otherwise): the caller wrote neither."""
    start = 1 if parts[:1] and parts[0].isdigit() else 0  # an item of a list
    field = start + 1
    if len(parts) > field and _UNION_TAG.fullmatch(parts[field]):
        return parts[:field] + parts[field + 1 :]
    return parts


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("start-up failed; /readyz says why")
