"""The request bodies (strict: no coercion, every field bounded) and the error body."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from llmcat.types import Product

#: field limits, in characters (a longer field is a 422 naming it)
MAX_ID = 200
MAX_TITLE = 2_000
MAX_BRAND = 200
MAX_DESCRIPTION = 20_000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_NAME = 200
MAX_ATTRIBUTE_VALUE = 2_000
MAX_IMAGES = 10
MAX_IMAGE_REF = 8_000

Id = Annotated[str, StringConstraints(max_length=MAX_ID)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ATTRIBUTE_NAME)]
AttributeValue = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE)]
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IMAGE_REF)]


class ProductIn(BaseModel):
    """One product, the fields a JSONL input line of ``llmcat classify`` holds. Only ``title``
    is required; ``null`` means not given. Types are strict: a number where text is expected is
    refused, never turned into text (an ``id`` may be a whole number)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "sku-1",
                    "title": "Elegance Polyester Multicolor Abstract Eyelet Door Curtain",
                    "brand": "Elegance",
                }
            ]
        },
    )

    id: Id | Annotated[int, Field(ge=-(10**18), le=10**18)] | None = Field(
        default=None, description="Your id; default: the product's position in the request."
    )
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE)]
    brand: Annotated[str, StringConstraints(max_length=MAX_BRAND)] | None = None
    description: Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)] | None = None
    attributes: (
        Annotated[dict[AttributeName, AttributeValue], Field(max_length=MAX_ATTRIBUTES)] | None
    ) = None
    image_urls: Annotated[list[ImageRef], Field(max_length=MAX_IMAGES)] | None = None

    @field_validator("title")
    @classmethod
    def _title_has_words(cls, title: str) -> str:
        if not title.strip():
            raise ValueError("the title is blank")
        return title

    def product(self, position: int) -> Product:
        """The Product this body names; ``position`` (from 1) is its id when it has none."""
        return Product(
            id=str(self.id) if self.id is not None else str(position),
            title=self.title,
            brand=self.brand or "",
            description=self.description or "",
            attributes=self.attributes or {},
            image_urls=self.image_urls or [],
        )


class ErrorDetail(BaseModel):
    """What went wrong: ``kind`` (docs/api.md's status table), a message, and per kind more
    (``fields`` for 422, ``deadline`` for 504)."""

    model_config = ConfigDict(extra="allow")

    kind: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer but a single product's own record."""

    error: ErrorDetail


def error_body(kind: str, message: str, **more: object) -> dict[str, object]:
    """The body of every error answer: ``{"error": {"kind": ..., "message": ..., ...}}``."""
    return {"error": {"kind": kind, "message": message, **more}}
