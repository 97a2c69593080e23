"""Reading JSON that someone outside wrote: a webhook body, a cursor, a provider's error body.

``json.loads`` alone is not enough for such input. Deep nesting (60,000 ``[``) raises
``RecursionError``, which is not a ``ValueError`` and so escapes every ``except ValueError``;
a document that parses at a depth just under the limit can still exhaust the stack of the
code that walks it later; ``NaN`` and ``1e999`` parse to numbers that poison arithmetic.
:func:`loads_untrusted` refuses all of these, and any document over a size bound, with
:class:`UnreadableJSON`, a ``ValueError``: a caller's ``except ValueError`` covers it.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32  # objects and arrays inside each other; real payloads nest 3 or 4 deep
MAX_BYTES = 1024 * 1024


class UnreadableJSON(ValueError):
    """The text is not JSON we accept: malformed, nested too deeply, too big, or not finite."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise UnreadableJSON(f"number {text[:20]!r} is out of range")
    return number


def _constant(name: str) -> Any:
    raise UnreadableJSON(f"{name} is not a JSON number")


def loads_untrusted(
    data: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """``data`` parsed as strict JSON; UnreadableJSON (a ValueError) for anything else."""
    if len(data) > max_bytes:
        raise UnreadableJSON(f"the JSON is over {max_bytes} bytes")
    try:
        value = json.loads(data, parse_float=_finite, parse_constant=_constant)
    except RecursionError as exc:
        raise UnreadableJSON("the JSON is nested too deeply") from exc
    except UnreadableJSON:
        raise
    except ValueError as exc:  # also a bad UTF-8 sequence, or an integer of 4,300+ digits
        raise UnreadableJSON(f"not JSON: {str(exc)[:80]}") from exc
    if _depth_exceeds(value, max_depth):
        raise UnreadableJSON(f"the JSON is nested more than {max_depth} deep")
    return value


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    # Walked with a list, not recursion: the walk itself must not run out of stack.
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
