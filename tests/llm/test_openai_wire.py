"""The openai backend on the wire, against a local HTTP server that answers like vLLM, like OpenAI
and like a plain server: request shapes, logprobs, retries, timeouts, malformed bodies."""

from __future__ import annotations

import json
import math
import time

import pytest

from llmcat import Classifier, Describer, RetryOptions, Settings
from llmcat.backends.openai import OpenAIBackend, _servers
from llmcat.errors import EndpointError
from tests.fake_server import FakeServer, Reply, chat_reply

pytestmark = pytest.mark.allow_model_requests
LABELS = ["Shoes", "Mobile Phones", "Toys"]
FAST = RetryOptions(attempts=3, backoff=0)
#: a product with something to say beyond its title (a title alone is composed, never asked),
#: and copy for it that passes the copy checks (else it would be regenerated, then composed)
SHOE = {
    "title": "Nike Pegasus running shoes",
    "brand": "Nike",
    "description": "Black road running shoes with a cushioned sole for daily training.",
    "attributes": {"colour": "Black"},
}
COPY = {
    "title": "Nike Pegasus",
    "bullets": ["Black", "Cushioned sole", "Road running"],
    "body": "Road running shoes by Nike with a cushioned sole for daily training, in black.",
}


def classifier(server: FakeServer, **kw: object) -> Classifier:
    kw.setdefault("retry", FAST)
    settings = Settings(base_url=server.base_url, cache=False, **kw)  # type: ignore[arg-type]
    return Classifier(LABELS, settings=settings)


def test_vllm_choice_request_shape_and_logprob_confidence() -> None:
    with FakeServer("vllm") as server:
        server.replies.append(
            chat_reply(
                "Shoes",
                logprobs=[
                    (
                        "Sh",
                        math.log(0.7),
                        {"Sh": math.log(0.7), "To": math.log(0.2), "Mo": math.log(0.1)},
                    ),
                    ("oes", 0.0, {}),
                ],
            )
        )
        result = classifier(server).classify("Nike Air Zoom Pegasus 40 running shoes")
    body = server.requests[0]
    assert body["structured_outputs"] == {"choice": LABELS}
    assert "guided_choice" not in body and "response_format" not in body
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0
    assert body["model"] == "served-model"  # taken from /v1/models when none is configured
    assert result.path == ["Shoes"] and result.model == "served-model"
    assert result.confidence == pytest.approx(0.7)
    assert [a.category_id for a in result.alternatives] == ["Shoes", "Toys", "Mobile Phones"]
    assert result.usage.prompt_tokens == 50


def test_vllm_json_schema_for_descriptions() -> None:
    with FakeServer("vllm") as server:
        server.replies.append(chat_reply(json.dumps(COPY)))
        # ask_model: the wire shape is under test, not whether this model's copy is worth asking
        d = Describer(
            settings=Settings(base_url=server.base_url, cache=False), ask_model="always"
        ).describe(SHOE, language="en")
    schema = server.requests[0]["structured_outputs"]["json"]
    assert (
        schema["required"] == ["title", "bullets", "body"]
        and schema["properties"]["bullets"]["maxItems"] == 3
    )
    assert d.ok and d.title == "Nike Pegasus"


def test_openai_response_format_enum_and_label_logprobs() -> None:
    with FakeServer("openai") as server:
        server.replies.append(
            chat_reply(
                '{"label":"Toys"}',
                logprobs=[
                    ('{"', 0.0, {}),
                    ("label", 0.0, {}),
                    ('":"', 0.0, {}),
                    (
                        "Toys",
                        math.log(0.6),
                        {"Toys": math.log(0.6), "Shoes": math.log(0.3), "Mo": math.log(0.1)},
                    ),
                    ('"}', 0.0, {}),
                ],
            )
        )
        result = classifier(server, structured_output="openai", model="gpt-4o-mini").classify(
            "wooden train"
        )
    fmt = server.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["properties"]["label"]["enum"] == LABELS
    assert "structured_outputs" not in server.requests[0]
    assert result.path == ["Toys"] and result.confidence == pytest.approx(0.6)


def test_plain_server_text_is_parsed_and_reasked_once() -> None:
    with FakeServer("llamacpp") as server:
        server.replies.extend(
            [
                chat_reply("I'd say: toys."),
                chat_reply("Kitchen"),
                chat_reply("Toys"),
                chat_reply("Kitchen"),
                chat_reply("Garden"),
            ]
        )
        clf = classifier(server)
        mapped = clf.classify("wooden train")
        reasked = clf.classify("toy car")
        failed = clf.classify("toy boat")
    assert (
        "structured_outputs" not in server.requests[0]
        and "response_format" not in server.requests[0]
    )
    assert mapped.path == ["Toys"] and mapped.confidence is None
    assert reasked.path == ["Toys"] and reasked.usage.calls == 2
    assert server.requests[2]["messages"][-2] == {"role": "assistant", "content": "Kitchen"}
    assert (
        failed.error is not None
        and failed.error.type == "OutputError"
        and failed.category_id is None
    )


def test_label_outside_the_set_from_a_vllm_server_never_escapes() -> None:
    with FakeServer("vllm") as server:
        server.responder = lambda body: chat_reply("Spaceships")
        result = classifier(server).classify("x")
    assert result.category_id is None and result.path == [] and result.error is not None


def test_429_retry_after_is_honoured() -> None:
    with FakeServer("vllm") as server:
        server.replies.extend(
            [
                Reply(
                    status=429,
                    headers={"retry-after": "1"},
                    body={"error": {"message": "slow down"}},
                ),
                chat_reply("Toys"),
            ]
        )
        start = time.monotonic()
        result = classifier(server).classify("x")
        waited = time.monotonic() - start
    assert result.path == ["Toys"] and len(server.requests) == 2 and waited >= 0.9


def test_500_is_retried_and_400_is_not() -> None:
    with FakeServer("vllm") as server:
        server.replies.extend(
            [Reply(status=500, body={"error": {"message": "oops"}}), chat_reply("Toys")]
        )
        assert classifier(server).classify("x").path == ["Toys"]
        assert len(server.requests) == 2
        server.requests.clear()
        server.replies.extend(
            [Reply(status=400, body={"error": {"message": "bad field"}}), chat_reply("Toys")]
        )
        result = classifier(server).classify("x")
    assert len(server.requests) == 1
    assert (
        result.error is not None
        and result.error.status_code == 400
        and "bad field" in result.error.message
    )
    assert result.error.retryable is False


def test_timeout_is_a_transport_error_record() -> None:
    with FakeServer("vllm") as server:
        server.responder = lambda body: Reply(delay=1.0, body=chat_reply("Toys").body)
        result = classifier(
            server,
            timeout=0.2,
            retry=RetryOptions(attempts=2, backoff=0),
        ).classify("x")
    assert (
        result.error is not None
        and result.error.type == "TransportError"
        and result.error.retryable
    )
    assert len(server.requests) == 2


def test_malformed_body_is_a_retryable_server_error() -> None:
    with FakeServer("vllm") as server:
        server.responder = lambda body: Reply(raw=b"{not json")
        result = classifier(server).classify("x")
    assert result.error is not None and result.error.retryable and len(server.requests) == 3


def test_connection_refused_is_a_setup_error_until_the_server_has_answered() -> None:
    """Nothing listening at the URL from the start is a wrong URL or a server not started: one
    EndpointError, not five retries per item. Once the server has answered, a refusal is a
    restart: a retried TransportError on the item's record."""
    with FakeServer("vllm") as server:
        url = server.base_url
    settings = Settings(base_url=url, model="m", retry=FAST, cache=False)
    with pytest.raises(EndpointError, match="connection refused"):
        Classifier(LABELS, settings=settings).classify("x")
    with FakeServer("vllm") as server:
        server.responder = lambda body: chat_reply("Toys")
        clf = classifier(server)
        assert clf.classify("x").ok
    result = clf.classify("y")  # the server has gone since
    assert result.error is not None and result.error.type == "TransportError"
    assert result.error.retryable


def test_batch_keeps_many_requests_in_flight_and_order() -> None:
    with FakeServer("vllm") as server:

        def answer(body: dict) -> Reply:  # type: ignore[type-arg]
            # Hold each request until 16 are in flight (or 2 s pass): the peak then shows the
            # client's bound exactly, whatever the machine's speed.
            deadline = time.monotonic() + 2
            while server.in_flight < 16 and time.monotonic() < deadline:
                time.sleep(0.005)
            text = body["messages"][-1]["content"]
            return chat_reply("Toys" if "toy" in text else "Shoes")

        server.responder = answer
        items = [f"toy {i}" if i % 2 else f"shoe {i}" for i in range(48)]
        results = classifier(server, concurrency=16).classify_many(items)
    assert [r.path[0] for r in results] == ["Shoes", "Toys"] * 24
    assert server.peak_in_flight == 16


def test_detected_mode_is_cached_per_base_url_and_overridable() -> None:
    with FakeServer("vllm") as server:
        server.responder = lambda body: chat_reply("Toys")
        classifier(server).classify_many(["a", "b", "c"])
        backend = OpenAIBackend(base_url=server.base_url, structured_output="none")
        assert backend.mode == "none"
    assert _servers[server.base_url].value.mode  # type: ignore[union-attr] == "vllm"


@pytest.mark.parametrize(
    ("version", "field", "mode"),
    [
        ("0.9.2", "guided_choice", "vllm-guided"),
        ("0.32.0", "structured_outputs", "vllm"),
        (None, "structured_outputs", "vllm"),  # no /version: assume the current API
    ],
)
def test_vllm_version_decides_which_constraint_fields_are_sent(
    version: str | None, field: str, mode: str
) -> None:
    with FakeServer("vllm", version=version) as server:
        server.responder = lambda body: chat_reply("Toys")
        result = classifier(server).classify("wooden train set")
    assert result.path == ["Toys"]
    assert field in server.requests[0]
    assert _servers[server.base_url].value.mode  # type: ignore[union-attr] == mode
    if mode == "vllm-guided":
        assert server.requests[0]["guided_choice"] == LABELS
        assert "structured_outputs" not in server.requests[0]


def test_vllm_guided_json_for_old_servers() -> None:
    with FakeServer("vllm", version="0.8.5") as server:
        server.responder = lambda body: chat_reply(json.dumps(COPY))
        describer = Describer(
            settings=Settings(base_url=server.base_url, cache=False, retry=FAST), ask_model="always"
        )
        copy = describer.describe(SHOE)
    assert copy.ok, copy.error
    assert server.requests[0]["guided_json"]["type"] == "object"


def test_blocking_calls_in_a_row_on_a_keep_alive_server() -> None:
    # Each blocking call runs in its own event loop; pooled connections of the previous loop must
    # be closed with it, not reused (RuntimeError: Event loop is closed) or leaked (ResourceWarning).
    with FakeServer("vllm", keep_alive=True) as server:
        server.responder = lambda body: chat_reply("Toys")
        clf = classifier(server, concurrency=4)
        for _ in range(3):
            results = clf.classify_many([f"toy {i}" for i in range(8)])
            assert all(r.path == ["Toys"] for r in results)
        assert clf.classify("one more").path == ["Toys"]
