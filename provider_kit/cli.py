"""The ``provider-kit`` command; imported only by the console script and ``python -m provider_kit``.

Exit codes: 0 success, 1 a provider failed (or is unhealthy), 2 a configuration or usage error.
Errors are one line on stderr; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, Dict, List, Optional, Sequence, TextIO

from .config import load_config
from .errors import ConfigError, ProviderError, ProviderKitError
from .registry import ProviderRegistry

EXIT_OK = 0
EXIT_PROVIDER_ERROR = 1
EXIT_CONFIG_ERROR = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provider-kit",
        description="LLM providers behind one plain, blocking interface.",
    )
    _add_common_options(parser, default_config=None, default_debug=False)
    # The same options after the command; SUPPRESS keeps a value given before the command.
    common = argparse.ArgumentParser(add_help=False)
    _add_common_options(common, default_config=argparse.SUPPRESS, default_debug=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    commands.add_parser("providers", parents=[common], help="list configured and skipped providers")

    health = commands.add_parser("health", parents=[common], help="check every provider in parallel")
    health.add_argument("names", nargs="*", metavar="NAME", help="only these providers")
    health.add_argument("--json", action="store_true", help="print JSON")
    health.add_argument("--timeout", type=float, default=5.0, metavar="S", help="deadline (default 5)")

    complete = commands.add_parser("complete", parents=[common], help="send one prompt")
    complete.add_argument("prompt", metavar="PROMPT", help="the prompt, or - to read it from stdin")
    complete.add_argument("-p", "--provider", metavar="NAME", help="provider name (default: the default)")
    complete.add_argument("-m", "--model", metavar="MODEL")
    complete.add_argument("--system", metavar="TEXT")
    complete.add_argument("--max-tokens", type=int, metavar="N")
    complete.add_argument("--temperature", type=float, metavar="T")
    complete.add_argument("--timeout", type=float, metavar="S")
    complete.add_argument("--stream", action="store_true", help="print text as it arrives")
    complete.add_argument("--json", action="store_true", help="print the completion as JSON")

    config = commands.add_parser("config", parents=[common], help="show the effective configuration")
    config.add_argument("--path", action="store_true", help="print only where it came from")

    commands.add_parser("demo", parents=[common], help="the whole flow against local simulators")
    return parser


def _add_common_options(parser: argparse.ArgumentParser, *, default_config: Any, default_debug: Any) -> None:
    parser.add_argument(
        "--config", metavar="PATH", default=default_config, help="config file (default: the usual search)"
    )
    parser.add_argument(
        "--debug", action="store_true", default=default_debug, help="show tracebacks and debug logs"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")
    try:
        handler = _COMMANDS[args.command]
        return handler(args, sys.stdout)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ProviderKitError as error:
        if args.debug:
            traceback.print_exc()
        print(f"provider-kit: error: {error}", file=sys.stderr)
        return EXIT_PROVIDER_ERROR if isinstance(error, ProviderError) else EXIT_CONFIG_ERROR


def _registry(args: argparse.Namespace) -> ProviderRegistry:
    return ProviderRegistry.from_config(args.config)


def _cmd_providers(args: argparse.Namespace, out: TextIO) -> int:
    with _registry(args) as registry:
        rows: List[List[str]] = [["NAME", "TYPE", "MODEL", "BASE URL", "KEY"]]
        for name in registry.names():
            info = _describe(registry[name])
            rows.append([name, info.get("type", "?"), str(info.get("model") or "-"),
                         str(info.get("base_url") or "-"), str(info.get("api_key", "-"))])
        _print_table(rows, out)
        default = registry.default_provider
        print(f"\ndefault: {registry.get_default().name}" + ("" if default else " (first alphabetically)"), file=out)
        if registry.skipped:
            print("\nskipped:", file=out)
            for name, reason in sorted(registry.skipped.items()):
                print(f"  {name}: {reason}", file=out)
    return EXIT_OK


def _describe(provider: Any) -> Dict[str, Any]:
    describe = getattr(provider, "describe", None)
    if callable(describe):
        return dict(describe())
    return {"type": type(provider).__name__, "model": getattr(provider, "model", None)}


def _cmd_health(args: argparse.Namespace, out: TextIO) -> int:
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    with _registry(args) as registry:
        report = registry.health_check_all(timeout=args.timeout, names=args.names or None)
    if args.json:
        json.dump(report.as_dict(), out, indent=2)
        out.write("\n")
    else:
        rows = [["PROVIDER", "STATUS", "LATENCY", "CIRCUIT", "REASON"]]
        for name, status in report.items():
            latency = "-" if status.latency_s is None else f"{status.latency_s * 1000:.0f} ms"
            rows.append([name, "ok" if status.ok else "FAIL", latency, _circuit(status.circuit), status.error or ""])
        _print_table(rows, out)
    return EXIT_OK if report.ok else EXIT_PROVIDER_ERROR


def _circuit(circuit: Optional[Dict[str, Any]]) -> str:
    """The breaker column: "closed", "half-open" or "open until 12:00:05 UTC"."""
    if not circuit:
        return "-"
    state = str(circuit.get("state", "?")).replace("_", "-")
    until = circuit.get("open_until")
    if state == "open" and until:
        return f"open until {str(until)[11:19]} UTC"
    return state


def _cmd_complete(args: argparse.Namespace, out: TextIO) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    options: Dict[str, Any] = {
        key: value
        for key, value in (
            ("model", args.model),
            ("system", args.system),
            ("max_tokens", args.max_tokens),
            ("temperature", args.temperature),
            ("timeout", args.timeout),
        )
        if value is not None
    }
    with _registry(args) as registry:
        provider = registry.get(args.provider) if args.provider else registry.get_default()
        if args.stream:
            final = None
            for chunk in provider.stream(prompt, **options):
                out.write(chunk.text)
                out.flush()
                final = chunk
            out.write("\n")
            if args.json and final is not None:
                json.dump({"finish_reason": final.finish_reason}, out)
                out.write("\n")
            return EXIT_OK
        completion = provider.complete(prompt, **options)
    if args.json:
        usage = completion.usage
        json.dump(
            {
                "text": completion.text,
                "provider": completion.provider,
                "model": completion.model,
                "finish_reason": completion.finish_reason,
                "usage": {
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                },
                "latency_s": round(completion.latency_s, 4),
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        print(completion.text, file=out)
    return EXIT_OK


def _cmd_config(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.config)
    if args.path:
        print(config.origin, file=out)
        return EXIT_OK
    print(f"# from: {config.origin}", file=out)
    json.dump(config.as_dict(mask=True), out, indent=2, default=str)
    out.write("\n")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo

    return run_demo(out)


def _print_table(rows: List[List[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)


_COMMANDS = {
    "providers": _cmd_providers,
    "health": _cmd_health,
    "complete": _cmd_complete,
    "config": _cmd_config,
    "demo": _cmd_demo,
}
