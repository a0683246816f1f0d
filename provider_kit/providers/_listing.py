"""Model listings: whether a configured model is among the ids a server lists, and the health
reason when it is not.

The rules differ by protocol and are deliberately lenient, so that a health check raises no
false alarm: Anthropic lists dated ids (``claude-sonnet-4-5-20250929``) for the aliases callers
use (``claude-sonnet-4-5``, ``claude-3-5-sonnet-latest``); Ollama and its ``/v1`` list
``llama3.2:latest`` for ``llama3.2``; a LiteLLM proxy may list a wildcard route
(``openai/*``). A server that accepts any name (llama.cpp lists only its alias) is configured
with ``check_model = false``.
"""

from __future__ import annotations

import fnmatch
import re
import urllib.parse
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..errors import ResponseFormatError

#: The most pages of a model listing followed (Anthropic's pages hold up to 1000 ids).
MAX_PAGES = 100
#: How many served ids a "model missing" reason names.
NAMES_SHOWN = 5
#: The hint for servers whose listing is not the whole truth.
CHECK_MODEL_HINT = "set check_model = false if this server accepts any model name"

_DATED_SUFFIX = re.compile(r"-\d{8}(?!\d)")


Query = Dict[str, str]


def follow_pages(
    provider: str, fetch: Callable[[Query], Tuple[List[str], Optional[Query]]], first: Query
) -> List[str]:
    """Every id of a listing: ``fetch(query)`` returns a page's ids and the next page's query
    (None after the last page). The caller's deadline bounds the whole walk.

    :raises ResponseFormatError: for a listing that repeats a page or never ends.
    """
    ids: List[str] = []
    query: Optional[Query] = first
    seen: Set[Tuple[Tuple[str, str], ...]] = set()
    while query is not None:
        # A server that hands out the same cursor again would be followed for ever.
        key = tuple(sorted(query.items()))
        if key in seen:
            raise ResponseFormatError(
                f"{provider}: the model listing repeats a page ({urllib.parse.urlencode(query)})",
                provider=provider,
            )
        if len(seen) >= MAX_PAGES:
            raise ResponseFormatError(
                f"{provider}: the model listing has more than {MAX_PAGES} pages", provider=provider
            )
        seen.add(key)
        page, query = fetch(query)
        ids.extend(page)
    return unique(ids)


def model_ids(provider: str, data: Any) -> List[str]:
    """The ``data[].id`` of a model listing page: the shape OpenAI, Anthropic, LiteLLM and
    llama.cpp share.

    :raises ResponseFormatError: for any other shape.
    """
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("id"), str) for entry in entries
    ):
        raise ResponseFormatError(
            f"{provider}: the models endpoint did not answer with a model list", provider=provider
        )
    return [entry["id"] for entry in entries]


def listing_problem(data: Any) -> Optional[str]:
    """The health check's reason when an OpenAI-shaped model list (``{"data": [...]}``, also
    Anthropic's) is not one, else None."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return "error: the models endpoint did not answer with a model list"
    return None


def unique(ids: Iterable[str]) -> List[str]:
    """``ids`` without repeats, in their first order."""
    return list(dict.fromkeys(ids))


def listed(model: str, served: Sequence[str]) -> bool:
    """The OpenAI-compatible rule: the exact id, Ollama's implicit ``:latest`` tag, or a
    wildcard route."""
    if model in served:
        return True
    if ":" not in model.rsplit("/", 1)[-1] and f"{model}:latest" in served:
        return True
    return _wildcard_match(model, served)


def listed_as_alias(model: str, served: Sequence[str]) -> bool:
    """Anthropic's rule: :func:`listed`, or an alias of a dated id. ``claude-sonnet-4-5`` is
    ``claude-sonnet-4-5-20250929``, and ``claude-3-5-sonnet-latest`` any dated
    ``claude-3-5-sonnet-...``; ``claude-sonnet-4`` is *not* ``claude-sonnet-4-5-20250929``."""
    if listed(model, served):
        return True
    base = model[: -len("-latest")] if model.endswith("-latest") else model
    prefix = base + "-"
    return any(
        name.startswith(prefix) and _DATED_SUFFIX.match(name, len(base)) is not None for name in served
    )


def _wildcard_match(model: str, served: Sequence[str]) -> bool:
    return any("*" in name and fnmatch.fnmatchcase(model, name) for name in served)


def missing_reason(
    model: str,
    served: Sequence[str],
    *,
    verb: str = "served",
    hint: Optional[str] = CHECK_MODEL_HINT,
) -> str:
    """``model missing: 'gpt-5' is not served (served: gpt-4o, ... and 12 more); <hint>``.

    The served ids most like ``model`` come first, so a typo's fix is in view.
    """
    if served:
        shown = _closest_first(model, served)[:NAMES_SHOWN]
        more = len(served) - len(shown)
        what = f"{verb}: " + ", ".join(shown) + (f" and {more} more" if more else "")
    else:
        what = "the listing is empty"
    reason = f"model missing: {model!r} is not {verb} ({what})"
    return f"{reason}; {hint}" if hint else reason


def _closest_first(model: str, served: Sequence[str]) -> List[str]:
    import difflib  # only when a model is missing: it is slow to import

    # Ids sharing the model's stem first (claude-sonnet-4-5-20250929 for claude-sonnet-4), then
    # near spellings, then the rest in the server's order.
    stem = model.split(":", 1)[0]
    first = [name for name in served if name.startswith(stem) or stem.startswith(name)]
    first += difflib.get_close_matches(model, served, n=NAMES_SHOWN, cutoff=0.5)
    first = unique(first)
    return first + [name for name in served if name not in first]
