"""Product images as a model sees them: an http(s) URL as given, or a data URI.

A local file (a path or a ``file://`` URL) is read only when it lies inside one of the allowed
folders (after resolving symlinks and ``..``), only up to a size limit, and scaled down when its
longer side is above a limit (Pillow, the ``images`` extra; without Pillow a file is sent as it
is). A data URI is checked for an image type and its size. Anything else is an ``InputError``
for that product. URLs are not fetched: the server fetches them.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from pathlib import Path

from llmcat.errors import InputError

_DATA_URI = re.compile(r"data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=\s]+)", re.S)
_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def image_ref(
    ref: str, allowed: Sequence[Path], *, max_bytes: int = 20_000_000, max_side: int = 1024
) -> str:
    """``ref`` as a URL or data URI the model can be sent; InputError when it cannot be used."""
    ref = ref.strip()
    if ref.startswith(("http://", "https://")):
        return ref
    if ref.startswith("data:"):
        match = _DATA_URI.fullmatch(ref)
        if match is None:
            raise InputError("an image data URI must be data:image/<type>;base64,<data>")
        if len(match.group(2)) * 3 // 4 > max_bytes:
            raise InputError(f"an image data URI is larger than {max_bytes:,} bytes")
        return ref
    return _local_file(ref, allowed, max_bytes=max_bytes, max_side=max_side)


def _local_file(ref: str, allowed: Sequence[Path], *, max_bytes: int, max_side: int) -> str:
    path = Path(ref.removeprefix("file://")).expanduser()
    resolved = path.resolve()
    folders = [Path(folder).expanduser().resolve() for folder in allowed]
    if not any(resolved.is_relative_to(folder) for folder in folders):
        where = ", ".join(str(f) for f in folders) or "none given"
        raise InputError(
            f"image {ref} is outside the image folders ({where}); add its folder with "
            "image_dirs (CLI: --image-dir)"
        )
    if not resolved.is_file():
        raise InputError(f"image {ref} is not a file")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise InputError(f"image {ref} has {size:,} bytes, more than {max_bytes:,}")
    data = resolved.read_bytes()
    mime = _MIME.get(resolved.suffix.lower())
    data, mime = _scaled(data, mime, max_side, ref)
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _scaled(data: bytes, mime: str | None, max_side: int, ref: str) -> tuple[bytes, str]:
    """The image's bytes and type, scaled down to ``max_side`` when Pillow is installed."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        if mime is None:
            raise InputError(
                f"image {ref}: unknown type (use .png, .jpg, .webp or .gif, or install "
                "llmcat[images] to read others)"
            ) from None
        return data, mime
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"image {ref} is not a readable image: {exc}") from None
    kind = (image.format or "").lower()
    if max(image.size) <= max_side and kind in ("png", "jpeg", "webp", "gif"):
        return data, f"image/{kind}"
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P"):
        image.save(out, format="PNG")
        return out.getvalue(), "image/png"
    image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue(), "image/jpeg"
