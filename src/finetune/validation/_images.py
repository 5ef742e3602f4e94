"""The rules of a message's images (its content parts that are not text): refused where
training would drop them; elsewhere checked as the provider takes them, and said to be left
out of the token counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.validation._rules import Target
    from finetune.validation._turns import Issue

__all__ = ["check_images", "non_text_parts"]

_DATA_URL = re.compile(r"data:image/([A-Za-z0-9.+-]+);base64,", re.IGNORECASE)


def check_images(content: list[Any], role: str, where: str, target: Target) -> Iterator[Issue]:
    """A message's parts that are not text (an image): the first refused where training would
    drop it; else each checked as ``target`` takes images, and the first said to be left out
    of the token counts."""
    found = non_text_parts(content)
    if not found:
        return
    index, first = found[0]
    place = f"{where}.content[{index}]"
    if not target.images:
        message = (
            f"the {target.name} backend trains on text: this {first['type']!r} part would be "
            "dropped, and the answer learned without it; remove the row, or train it on a "
            "backend that takes images"
        )
        yield "unsupported_content", "error", message, place
        return
    for index, part in found:
        problem = _image_problem(part, role, target)
        if problem is not None:
            yield "invalid_image", "error", problem, f"{where}.content[{index}]"
    message = (
        f"this {first['type']!r} part is not in the token counts (nor in the context check): "
        f"{target.name} bills it by its size, so the estimate's tokens and cost are a floor"
    )
    yield "uncounted_image", "warning", message, place


def non_text_parts(content: Any) -> list[tuple[int, dict[str, Any]]]:
    """A message content's parts that are not text (its images), each with its index."""
    if not isinstance(content, list):
        return []
    return [
        (index, part)
        for index, part in enumerate(content)
        if isinstance(part, dict) and isinstance(part.get("type"), str) and part["type"] != "text"
    ]


def _image_problem(part: dict[str, Any], role: str, target: Target) -> str | None:
    """What ``target`` would refuse in one image part, if anything."""
    if role != "user":
        return f"an image in the {role}'s turn: {target.name} reads images in the user's only"
    if part["type"] != "image_url":
        return None  # another kind of part: the provider's to judge
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.strip():
        return 'an image_url part needs its url: {"image_url": {"url": "data:image/png;..."}}'
    inline = _DATA_URL.match(url)
    if inline is None:
        if target.inline_images_only:
            return (
                f"{target.name} takes images inline, as base64 data URLs "
                f"(data:image/png;base64,...), not {url[:40]!r}: download and encode it"
            )
        return None
    kind = inline.group(1).lower().replace("jpg", "jpeg")
    if target.image_types and kind not in target.image_types:
        takes = ", ".join(sorted(target.image_types))
        return f"{target.name} takes {takes} images, not image/{inline.group(1)}"
    return None
