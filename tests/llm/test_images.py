"""Product images on the wire, against a local HTTP server: URL parts, data URIs from local
files, a server that refuses images, paths outside the image folders, the cache key."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from llmcat import (
    Classifier,
    CompletionRequest,
    ConfigError,
    Describer,
    FakeBackend,
    Product,
    RetryOptions,
    Settings,
)
from llmcat.errors import InputError
from llmcat.llm.completions import Message
from llmcat.llm.images import image_ref
from tests.fake_server import FakeServer, Reply, chat_reply

pytestmark = pytest.mark.allow_model_requests
LABELS = ["Shoes", "Mobile Phones", "Toys"]
COPY = json.dumps(
    {
        "title": "Nike Air Zoom Pegasus 40 running shoes in black",
        "bullets": ["Black colourway", "Built by Nike for road running", "Zoom Air cushioning"],
        "body": "Black Nike Air Zoom Pegasus 40 running shoes built for everyday road running.",
    }
)


def png(width: int = 2, height: int = 2) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def settings(server: FakeServer, **kw: Any) -> Settings:
    return Settings(
        base_url=server.base_url,
        cache=False,
        retry=RetryOptions(attempts=2, backoff=0),
        **kw,
    )


def image_parts(body: dict[str, Any]) -> list[str]:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return []
    assert content[0]["type"] == "text" and content[0]["text"]
    return [part["image_url"]["url"] for part in content if part["type"] == "image_url"]


def test_an_image_url_is_sent_as_an_image_part_for_classification() -> None:
    url = "https://example.com/shoe.jpg"
    with FakeServer("vllm") as server:
        server.responder = lambda body: chat_reply("Shoes")
        result = Classifier(LABELS, strategy="flat", settings=settings(server)).classify(
            Product(title="Nike Pegasus", image_urls=[url])
        )
    assert result.ok and result.images_used
    assert image_parts(server.requests[-1]) == [url]


def test_a_local_file_becomes_a_data_uri_inside_the_image_folders(tmp_path: Path) -> None:
    picture = tmp_path / "shoe.png"
    picture.write_bytes(png())
    with FakeServer("vllm") as server:
        server.responder = lambda body: chat_reply(COPY)
        describer = Describer(settings=settings(server, image_dirs=[tmp_path]))
        result = describer.describe(
            Product(title="Nike Air Zoom Pegasus 40 running shoes", image_urls=[str(picture)])
        )
    assert result.ok and result.images_used
    (uri,) = image_parts(server.requests[0])
    assert uri == "data:image/png;base64," + base64.b64encode(png()).decode()


def test_a_data_uri_is_sent_as_given() -> None:
    uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    with FakeServer("openai") as server:
        server.responder = lambda body: chat_reply(COPY)
        Describer(settings=settings(server)).describe(
            Product(title="Nike Air Zoom Pegasus 40 running shoes", image_urls=[uri])
        )
    assert image_parts(server.requests[0]) == [uri]


def test_a_server_that_refuses_images_gets_one_retry_without_them() -> None:
    refusal = Reply(
        body={"error": {"message": "SmolLM2 is not a multimodal model", "type": "BadRequest"}},
        status=400,
    )
    with FakeServer("vllm") as server:
        server.responder = lambda body: refusal if image_parts(body) else chat_reply("Shoes")
        clf = Classifier(LABELS, strategy="flat", settings=settings(server, concurrency=1))
        products = [
            Product(title=f"Nike Pegasus {i}", image_urls=["https://example.com/a.jpg"])
            for i in range(3)
        ]
        results = clf.classify_many(products)
    assert [r.path for r in results] == [["Shoes"]] * 3
    assert not any(r.images_used for r in results)
    with_images = [b for b in server.requests if image_parts(b)]
    assert len(with_images) == 1  # the first; once refused, no image is sent again
    assert len(server.requests) == 4


def test_require_turns_a_refusal_into_a_config_error() -> None:
    refusal = Reply(body={"error": {"message": "image input is not supported"}}, status=400)
    with FakeServer("vllm") as server:
        server.responder = lambda body: refusal
        clf = Classifier(LABELS, strategy="flat", settings=settings(server, images="require"))
        with pytest.raises(ConfigError, match="require"):
            clf.classify(Product(title="x", image_urls=["https://example.com/a.jpg"]))


def test_an_image_path_outside_the_image_folders_is_refused(tmp_path: Path) -> None:
    inside, outside = tmp_path / "images", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes(png())
    (inside / "link.png").symlink_to(secret)  # a symlink does not open a way out
    with FakeServer("vllm") as server:
        server.responder = lambda body: chat_reply(COPY)
        describer = Describer(settings=settings(server, image_dirs=[inside]))
        results = describer.describe_many(
            [
                Product(id="a", title="Shoe", image_urls=[str(secret)]),
                Product(
                    id="b", title="Shoe", image_urls=[str(inside / ".." / "private" / "secret.png")]
                ),
                Product(id="c", title="Shoe", image_urls=[str(inside / "link.png")]),
            ]
        )
    for result in results:
        assert result.error is not None and result.error.type == "InputError"
        assert "outside the image folders" in result.error.message
    assert server.requests == []  # nothing was read, nothing was sent


def test_without_image_folders_no_local_file_is_read(tmp_path: Path) -> None:
    picture = tmp_path / "shoe.png"
    picture.write_bytes(png())
    with pytest.raises(InputError, match="outside the image folders"):
        image_ref(str(picture), [])


def test_large_local_images_are_scaled_and_oversized_ones_refused(tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.png"
    big.write_bytes(png(3000, 1500))
    uri = image_ref(str(big), [tmp_path], max_side=512)
    data = base64.b64decode(uri.split(",", 1)[1])
    assert Image.open(io.BytesIO(data)).size == (512, 256)
    with pytest.raises(InputError, match="more than"):
        image_ref(str(big), [tmp_path], max_bytes=100)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        image_ref(str(tmp_path / "notes.txt"), [tmp_path])
    with pytest.raises(InputError, match="data URI"):
        image_ref("data:text/plain;base64,aGk=", [])


def test_the_cache_key_changes_with_the_image_content() -> None:
    def key(images: list[str]) -> str:
        request = CompletionRequest(messages=[Message(role="user", content="x")], images=images)
        return request.cache_key("openai", "m")

    a = "data:image/png;base64," + base64.b64encode(png(2, 2)).decode()
    b = "data:image/png;base64," + base64.b64encode(png(3, 3)).decode()
    assert len({key([]), key([a]), key([b])}) == 3
    plain = CompletionRequest(messages=[Message(role="user", content="x")])
    assert key([]) == plain.cache_key("openai", "m")


def test_never_sends_no_image_and_a_model_without_vision_gets_none() -> None:
    product = Product(title="Nike Pegasus", image_urls=["https://example.com/a.jpg"])
    for backend, kw in (
        (FakeBackend(vision=True), {"images": "never"}),
        (FakeBackend(vision=False), {}),
    ):
        backend.responder = lambda request: "Shoes"
        result = Classifier(LABELS, strategy="flat", backend=backend, **kw).classify(product)
        assert result.ok and not result.images_used
        assert all(not r.images for r in backend.requests)


def test_require_refuses_a_model_without_vision_and_a_product_without_images() -> None:
    with pytest.raises(ConfigError, match="takes no images"):
        Classifier(LABELS, strategy="flat", backend=FakeBackend(vision=False), images="require")
    clf = Classifier(
        LABELS, backend=FakeBackend(vision=True, responder=lambda r: "Shoes"), images="require"
    )
    result = clf.classify(Product(title="Nike Pegasus"))
    assert result.error is not None and result.error.type == "InputError"
