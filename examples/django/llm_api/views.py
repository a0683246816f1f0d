"""A JSON API over provider_kit: one completion, or a stream as server-sent events.

``POST /llm/complete/`` with ``{"prompt": "..."}`` answers ``{"text", "provider", "model",
"finish_reason"}``. ``POST /llm/stream/`` answers ``text/event-stream``: one ``data:`` event
per piece of text (``{"text", "provider"}``), then ``event: done`` (``{"provider",
"finish_reason", "usage"}``), or ``event: error`` (``{"error", "provider"}``) when the provider
fails after the stream has started. Both fall back to the providers of
``settings.PROVIDER_KIT_FALLBACKS`` when the default one fails.

``POST /llm/orders/`` with ``{"prompt": "...", "allow_changes": false}`` lets the model use two
tools, ``order_status`` and ``cancel_order``, through ``provider_kit.run_tools``, and answers
``{"text", "provider", "calls": [{"name", "arguments", "refused"}]}``. Its ``before_call`` hook
is the approval step: a cancellation runs only when the request says ``"allow_changes": true``;
otherwise the call is refused and the model is told so. The hook runs in the request's thread
(the tools run in worker threads), so it may look at ``request.user`` or the database.

Why these views are exempt from CSRF: this is a JSON API for non-browser clients (other
services, scripts) that authenticate with a header (``Authorization: Bearer``, see
``LLM_API_TOKEN``), never with the session cookie. CSRF is an attack on cookies a browser sends
by itself; a request without the session cookie has nothing to forge. If these views relied on
Django's session login (cookie auth) instead, they must keep CSRF protection, and the page
calling them must send the token (the ``X-CSRFToken`` header).
"""

import hmac
import itertools
import json
import logging
import math

from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from provider_kit import (
    InvalidRequestError,
    MaxTurnsExceededError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    Tool,
    ToolLoopTimeoutError,
    run_tools,
)

from .registry import get_registry

logger = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 8000


def call_options():
    """What every call passes to provider_kit: the fallbacks and the per-provider timeout."""
    return {"fallbacks": settings.PROVIDER_KIT_FALLBACKS, "timeout": settings.PROVIDER_KIT_TIMEOUT}


def refused(request):
    """A 401 response when ``LLM_API_TOKEN`` is set and the request does not carry it."""
    token = settings.LLM_API_TOKEN
    if token is None:
        return None
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return None
    return JsonResponse({"error": "send the API token: Authorization: Bearer <token>"}, status=401)


def read_prompt(request):
    """The "prompt" of a JSON body, or None when it is missing, empty or too long."""
    try:
        prompt = json.loads(request.body).get("prompt")
    except (ValueError, AttributeError):
        return None
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
        return None
    return prompt


def bad_prompt():
    return JsonResponse(
        {"error": f'send {{"prompt": "..."}} as JSON, at most {MAX_PROMPT_CHARS} characters'},
        status=400,
    )


def describe_failure(exc):
    """One log line: the error raised and, with fallbacks, what each provider before it said."""
    earlier = [str(error) for error in getattr(exc, "errors", [])[:-1]]
    return f"{exc} (before it: {'; '.join(earlier)})" if earlier else str(exc)


def provider_error_response(exc):
    """The response this service gives its clients when every provider tried failed.

    It is chosen by the last provider's error; the providers' own messages go to the log, not
    to the client (provider_kit never puts a key in a message).
    """
    logger.warning("LLM call failed: %s", describe_failure(exc))
    if isinstance(exc, RateLimitError):
        response = JsonResponse({"error": "too many requests, try again later"}, status=429)
        if exc.retry_after is not None:
            response["Retry-After"] = str(math.ceil(exc.retry_after))
        return response
    if isinstance(exc, ProviderTimeoutError):
        return JsonResponse({"error": "the language model did not answer in time"}, status=504)
    if isinstance(exc, InvalidRequestError):
        return JsonResponse({"error": "the language model cannot answer this request"}, status=400)
    # AuthenticationError, ServerError, ProviderConnectionError (also: every circuit open),
    # ResponseFormatError: the providers (or our account with them) failed, not the client.
    return JsonResponse({"error": "the language model is unavailable"}, status=502)


@csrf_exempt  # a header-authenticated JSON API: see the module docstring
@require_POST
def complete(request):
    denied = refused(request)
    if denied is not None:
        return denied
    prompt = read_prompt(request)
    if prompt is None:
        return bad_prompt()
    try:
        completion = get_registry().complete(prompt, **call_options())
    except ProviderError as exc:
        return provider_error_response(exc)
    return JsonResponse({
        "text": completion.text,
        "provider": completion.provider,
        "model": completion.model,
        "finish_reason": completion.finish_reason,
    })


@csrf_exempt  # a header-authenticated JSON API: see the module docstring
@require_POST
def stream(request):
    denied = refused(request)
    if denied is not None:
        return denied
    prompt = read_prompt(request)
    if prompt is None:
        return bad_prompt()
    chunks = get_registry().stream(prompt, **call_options())
    try:
        # The first next() sends the request, falling back to the next provider until one sends
        # a chunk. Nothing has been written to the client yet, so a failure here still gets its
        # own status code.
        first = next(chunks, None)
    except ProviderError as exc:
        return provider_error_response(exc)
    response = StreamingHttpResponse(server_sent_events(first, chunks), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response


def sse(data, event=None):
    """One server-sent event; ``json.dumps`` writes no newline, so ``data`` is one line."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


def server_sent_events(first, chunks):
    """The events of a stream whose first chunk has arrived.

    The status line (200) is already on its way when this runs: a failure from here on can only
    be told in the body, as an ``error`` event, so that the client never takes the text so far
    for the whole answer.
    """
    last = first
    try:
        for chunk in itertools.chain([first] if first is not None else [], chunks):
            last = chunk
            if chunk.text:
                yield sse({"text": chunk.text, "provider": chunk.provider})
    except ProviderError as exc:
        logger.warning("LLM stream failed after it started: %s", describe_failure(exc))
        yield sse({"error": "the language model failed mid-answer; the text so far is incomplete",
                   "provider": exc.provider}, event="error")
        return
    except Exception:
        logger.exception("LLM stream failed after it started")
        yield sse({"error": "internal error; the text so far is incomplete", "provider": None}, event="error")
        return
    finally:
        # Runs when the stream ends, and when the client goes away (Django closes this
        # generator): closing provider_kit's stream closes the provider's connection at once.
        chunks.close()
    usage = getattr(last, "usage", None)
    yield sse({
        "provider": getattr(last, "provider", None),
        "finish_reason": getattr(last, "finish_reason", None),
        "usage": None if usage is None else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
    }, event="done")


# --------------------------------------------------------------------------- tools

#: A stand-in for the site's order table.
ORDERS = {"A1": "shipped", "B2": "processing"}
ORDER_ID = {"type": "object", "properties": {"order_id": {"type": "string", "description": "as A1"}},
            "required": ["order_id"]}


def order_status(order_id):
    return ORDERS.get(order_id, "unknown order")


def cancel_order(order_id):
    if ORDERS.get(order_id) != "processing":
        return f"order {order_id} cannot be cancelled"
    return f"order {order_id} cancelled"


ORDER_TOOLS = [
    Tool("order_status", "The status of an order.", ORDER_ID, function=order_status),
    Tool("cancel_order", "Cancel an order that has not shipped yet.", ORDER_ID, function=cancel_order),
]
#: The tools that change something: each call needs the request's approval.
CHANGES = {"cancel_order"}


@csrf_exempt  # a header-authenticated JSON API: see the module docstring
@require_POST
def orders(request):
    denied = refused(request)
    if denied is not None:
        return denied
    prompt = read_prompt(request)
    if prompt is None:
        return bad_prompt()
    allow_changes = json.loads(request.body).get("allow_changes") is True
    calls = []

    def approve(call):
        """Runs before each tool call, in this request's thread: False refuses the call."""
        allowed = call.name not in CHANGES or allow_changes
        calls.append({"name": call.name, "arguments": call.arguments, "refused": not allowed})
        if not allowed:
            logger.info("refused %s%s: the request did not allow changes", call.name, call.arguments)
        return allowed

    options = call_options()
    # One deadline for the whole exchange, tool runs included (not one per model call).
    timeout = options.pop("timeout")
    try:
        answer = run_tools(get_registry(), prompt, tools=ORDER_TOOLS, before_call=approve, timeout=timeout,
                           max_turns=4, **options)
    except ToolLoopTimeoutError:
        logger.warning("the tool exchange did not end within %s s", timeout)
        return JsonResponse({"error": "the language model did not answer in time"}, status=504)
    except MaxTurnsExceededError:
        logger.warning("the model kept calling tools: %s", [call["name"] for call in calls])
        return JsonResponse({"error": "the language model did not come to an answer"}, status=502)
    except ProviderError as exc:
        return provider_error_response(exc)
    return JsonResponse({"text": answer.text, "provider": answer.provider, "calls": calls})
