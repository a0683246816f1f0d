"""``provider-kit complete``: one prompt (with images, a schema, a reasoning level) to one
provider, and its answer printed as text, JSON data, JSON or JSON lines.

Standard output carries only the answer, so that it pipes (``| jq``); the model's thinking goes
to standard error, dimmed when that is a terminal, and a refusal is reported there too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable, ContextManager, Dict, List, Optional, TextIO, Union

from ._cli_parser import EXIT_OK, EXIT_PROVIDER_ERROR
from ._parts import Image
from .errors import ConfigError
from .registry import ProviderRegistry
from .types import Completion

#: SGR "faint" and "reset": how a terminal dims the model's thinking.
_DIM, _RESET = "\x1b[2m", "\x1b[0m"


RegistryFactory = Callable[[argparse.Namespace], ContextManager[ProviderRegistry]]


def run(args: argparse.Namespace, out: TextIO, open_registry: RegistryFactory) -> int:
    """The ``complete`` command; ``open_registry`` builds the registry from ``args``."""
    prompt: Union[str, List[Any]] = _read_prompt(args.prompt)
    if args.image:
        prompt = [prompt, *(Image.from_path(path) for path in args.image)]
    options: Dict[str, Any] = {
        key: value
        for key, value in (
            ("model", args.model),
            ("system", args.system),
            ("max_tokens", args.max_tokens),
            ("temperature", args.temperature),
            ("stop", args.stop),
            ("timeout", args.timeout),
            ("schema", _read_schema(args.schema) if args.schema else None),
            ("reasoning", None if args.reasoning is None else (False if args.reasoning == "off" else args.reasoning)),
        )
        if value is not None
    }
    thinking = _Thinking(sys.stderr, enabled=not args.json)
    with open_registry(args) as registry:
        provider = registry.get(args.provider) if args.provider else registry.get_default()
        if args.stream:
            return _stream(provider, prompt, options, out, thinking, as_json=args.json)
        completion = provider.complete(prompt, **options)
    if args.json:
        json.dump(_completion_dict(completion), out, indent=2)
        out.write("\n")
        return EXIT_OK
    thinking.write(getattr(completion, "reasoning", None) or "")
    thinking.end()
    if "schema" in options:
        return _print_data(completion, out)
    print(completion.text, file=out)
    return EXIT_OK


def _read_prompt(given: Optional[str]) -> str:
    """The prompt argument; ``-``, or none with stdin not a terminal, reads standard input."""
    if given is None:
        if sys.stdin is None or sys.stdin.isatty():
            # Reading a terminal would wait silently for Ctrl-D: say what is missing instead.
            raise ConfigError("no prompt: give one (provider-kit complete \"Hello\") or pipe it in "
                              "(echo Hello | provider-kit complete)")
        given = "-"
    prompt = sys.stdin.read() if given == "-" else given
    if not prompt.strip():
        raise ConfigError("the prompt is empty" + (" (nothing on standard input)" if given == "-" else ""))
    return prompt


def _read_schema(path: str) -> Dict[str, Any]:
    """The JSON schema in file ``path``.

    :raises ConfigError: when it cannot be read, is not JSON, or is not a JSON object.
    """
    try:
        with open(path, encoding="utf-8") as file:
            schema = json.load(file)
    except OSError as error:
        raise ConfigError(f"--schema: cannot read {path!r}: {error.strerror or error}") from None
    except ValueError as error:
        raise ConfigError(f"--schema: {path!r} is not valid JSON: {error}") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"--schema: {path!r} must hold a JSON schema (an object), not a {type(schema).__name__}")
    return schema


def _print_data(completion: Any, out: TextIO) -> int:
    """The reply's JSON data, pretty-printed; a refusal (no data) on standard error, exit 1."""
    data = getattr(completion, "data", None)
    if data is None:
        print(f"provider-kit: the model declined ({completion.finish_reason}): {completion.text}", file=sys.stderr)
        return EXIT_PROVIDER_ERROR
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return EXIT_OK


class _Thinking:
    """The model's thinking on standard error as it arrives: dimmed on a terminal, plain
    otherwise (a log file gets no escape codes), and ended with a newline."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.dim = enabled and _is_terminal(stream)
        self.started = False

    def write(self, text: str) -> None:
        if not self.enabled or not text:
            return
        self.started = True
        self.stream.write(f"{_DIM}{text}{_RESET}" if self.dim else text)
        self.stream.flush()

    def end(self) -> None:
        """After the thinking, before the answer: the line ends (once)."""
        if self.started:
            self.stream.write("\n")
            self.stream.flush()
            self.started = False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _stream(provider: Any, prompt: Any, options: Dict[str, Any], out: TextIO, thinking: _Thinking, *,
            as_json: bool) -> int:
    """Print a stream as it arrives: text (thinking on stderr), or JSON lines (each chunk,
    then the whole completion)."""
    started = time.monotonic()
    pieces: List[str] = []
    thoughts: List[str] = []
    finish_reason = usage = data = parsed = None
    for chunk in provider.stream(prompt, **options):
        reasoning = getattr(chunk, "reasoning", "")
        if reasoning:
            thoughts.append(reasoning)
            thinking.write(reasoning)
        if chunk.text:
            thinking.end()
        pieces.append(chunk.text)
        finish_reason = chunk.finish_reason or finish_reason
        usage = chunk.usage or usage
        data = getattr(chunk, "data", None) if getattr(chunk, "data", None) is not None else data
        parsed = getattr(chunk, "parsed", None) if getattr(chunk, "parsed", None) is not None else parsed
        if as_json:
            out.write(json.dumps(_chunk_dict(chunk)) + "\n")
        else:
            out.write(chunk.text)
        out.flush()
    thinking.end()
    whole = Completion("".join(pieces), model=options.get("model") or getattr(provider, "model", None),
                       provider=provider.name, finish_reason=finish_reason, usage=usage,
                       latency_s=time.monotonic() - started, data=data, parsed=parsed,
                       reasoning="".join(thoughts) or None)
    if not as_json:
        out.write("\n")
        if "schema" in options and data is None:
            return _print_data(whole, out)  # the refusal, on stderr
        return EXIT_OK
    out.write(json.dumps(_completion_dict(whole)) + "\n")
    return EXIT_OK


def _completion_dict(completion: Completion) -> Dict[str, Any]:
    """What ``complete --json`` prints, streamed or not: one function, so the fields agree."""
    to_dict = getattr(completion, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    # A third-party provider's completion without to_dict(): the same JSON-ready fields.
    return {
        "text": completion.text,
        "provider": completion.provider,
        "model": completion.model,
        "finish_reason": completion.finish_reason,
        "usage": _usage_dict(completion.usage),
        "latency_s": round(completion.latency_s, 4),
    }


def _chunk_dict(chunk: Any) -> Dict[str, Any]:
    to_dict = getattr(chunk, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"text": chunk.text, "finish_reason": chunk.finish_reason,
            "usage": None if chunk.usage is None else _usage_dict(chunk.usage)}


def _usage_dict(usage: Any) -> Dict[str, Any]:
    to_dict = getattr(usage, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}
