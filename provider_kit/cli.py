"""The ``provider-kit`` command; imported only by the console script and ``python -m provider_kit``.

Exit codes: 0 success, 1 a provider failed (or is unhealthy), 2 a configuration or usage error,
130 interrupted, 141 standard output closed early (``| head``). Errors are one line on stderr;
``--debug`` shows the traceback as well. How the command line is read (one-line usage errors,
suggestions, the shared help texts) is in ``_cli_parser``; what each command does is here.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from typing import Any, Dict, List, Optional, Sequence, TextIO, cast

from . import _cli_cache, _cli_complete, _cli_logs, _cli_serve
from ._cli_parser import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROVIDER_ERROR,
    EXIT_USAGE,
    HELP_EPILOG,
    Parser,
    reject_extras,
    silence_stdout,
)
from ._version import __version__
from .config import load_config
from .errors import ConfigError, ProviderError, ProviderKitError, ProviderSkippedWarning
from .registry import ProviderRegistry

EXIT_CONFIG_ERROR = EXIT_USAGE

#: Commands that run against their own simulators: an explicit --config is a mistake there.
_SIMULATOR_COMMANDS = ("demo", "serve")


def _build_parser() -> Parser:
    parser = Parser(
        prog="provider-kit",
        description="LLM providers (OpenAI, Anthropic, Ollama, any OpenAI-compatible server) behind one\n"
                    "plain, blocking interface. New here? Start with `provider-kit demo`.",
        epilog=HELP_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"provider-kit {__version__}",
                        help="print the version and exit")
    _add_common_options(parser, default_config=None, default_debug=False)
    # The same options after the command; SUPPRESS keeps a value given before the command.
    common = Parser(add_help=False)
    _add_common_options(common, default_config=argparse.SUPPRESS, default_debug=argparse.SUPPRESS)
    # demo and serve accept --config only to reject it with a clear message (see main).
    simulated = Parser(add_help=False)
    _add_common_options(simulated, default_config=argparse.SUPPRESS, default_debug=argparse.SUPPRESS,
                        config_help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                     help="(each has its own --help)")

    def command(name: str, summary: str, description: str, example: str, parents: Any = (common,)) -> Parser:
        """A subcommand with a one-line summary, a description and an example in its --help."""
        return cast(Parser, commands.add_parser(name, parents=list(parents), help=summary,
                                                description=description, epilog="example:\n" + example))

    command(
        "providers", "list configured and skipped providers",
        "List every configured provider with its type, model and base URL (never its key), the\n"
        "default one (and why, when the configured default was skipped), and the providers that\n"
        "were skipped, with the reason.",
        "  provider-kit providers --config provider_kit.toml",
    )

    health = command(
        "health", "check every provider in parallel",
        "Check providers in parallel within one deadline; print a table (or JSON). A skipped\n"
        "provider is a SKIP row. Exit status 0 when every provider checked is ok, 1 when any is\n"
        "not, or when the configured default or a provider NAME given was skipped.",
        "  provider-kit health --timeout 3 openai local\n  provider-kit health --json | jq .openai.ok",
    )
    health.add_argument("names", nargs="*", metavar="NAME", help="only these providers (default: all)")
    health.add_argument("--json", action="store_true", help="print JSON: name -> status")
    health.add_argument("--timeout", type=float, default=5.0, metavar="S",
                        help="deadline for the whole check, in seconds (default 5)")

    complete = command(
        "complete", "send one prompt",
        "Send one prompt to a provider (the default one unless -p) and print the answer.\n"
        "With no PROMPT, the prompt is read from standard input when that is not a terminal.\n"
        "--json prints text, provider, model, finish_reason, usage and latency_s (and data and\n"
        "reasoning when there are some); with --stream it prints JSON lines: one object per chunk,\n"
        "then one final object with those fields.",
        '  provider-kit complete -p anthropic --max-tokens 100 "Name three rivers."\n'
        '  git diff | provider-kit complete --system "Write a commit message." --stream\n'
        '  provider-kit complete --image receipt.jpg --schema receipt.schema.json "Read this receipt."',
    )
    complete.add_argument("prompt", metavar="PROMPT", nargs="?",
                          help="the prompt; - or nothing reads it from standard input")
    complete.add_argument("-p", "--provider", metavar="NAME", help="provider name (default: the default provider)")
    complete.add_argument("-m", "--model", metavar="MODEL", help="model (default: the provider's)")
    complete.add_argument("--system", metavar="TEXT", help="system prompt")
    complete.add_argument("--max-tokens", type=int, metavar="N", help="most tokens to generate")
    complete.add_argument("--temperature", type=float, metavar="T", help="sampling temperature, e.g. 0 to 2")
    complete.add_argument("--stop", action="append", metavar="TEXT",
                          help="stop generating at TEXT (repeat for several)")
    complete.add_argument("--timeout", type=float, metavar="S",
                          help="deadline for the call, in seconds, retries included (default: the provider's)")
    complete.add_argument("--stream", action="store_true", help="print text as it arrives")
    complete.add_argument("--json", action="store_true", help="print JSON (JSON lines with --stream)")
    complete.add_argument("--image", action="append", metavar="PATH",
                          help="send the image in PATH with the prompt (PNG, JPEG, GIF, WebP; repeat for several)")
    complete.add_argument("--schema", metavar="FILE.json",
                          help="ask for JSON matching the JSON schema in FILE.json, and print that JSON")
    complete.add_argument("--reasoning", choices=("low", "medium", "high", "off"), metavar="LEVEL",
                          help="how hard the model thinks: low, medium, high, or off; "
                               "its thinking is printed on standard error")

    models = command(
        "models", "list the models each provider serves",
        "List the model ids each provider's server serves (its model listing), one per line under\n"
        "the provider's name; all providers in parallel. Exit status 1 when a listing failed\n"
        "(the reason is on standard error).",
        "  provider-kit models openai local\n  provider-kit models --json | jq -r '.openai.models[]'",
    )
    models.add_argument("names", nargs="*", metavar="NAME", help="only these providers (default: all)")
    models.add_argument("--json", action="store_true", help="print JSON: name -> {ok, models, error}")
    models.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="deadline per provider, in seconds (default 10)")

    config = command(
        "config", "show the effective configuration",
        "Print the configuration in use, with every secret masked, and where it came from.",
        "  provider-kit config --path",
    )
    config.add_argument("--path", action="store_true", help="print only where it came from")

    command(
        "demo", "the whole flow against local simulators",
        "Start local simulators of the OpenAI, Anthropic and Ollama protocols and show a health\n"
        "check, one completion from each and a stream. No key, no network, no real model; it\n"
        "ignores every configuration (and refuses --config).",
        "  provider-kit demo",
        parents=(simulated,),
    )

    logs = command("logs", _cli_logs.SUMMARY, _cli_logs.DESCRIPTION, _cli_logs.EXAMPLE)
    _cli_logs.add_arguments(logs)

    serve = command("serve", _cli_serve.SUMMARY, _cli_serve.DESCRIPTION, _cli_serve.EXAMPLE, parents=(simulated,))
    _cli_serve.add_arguments(serve)

    cache = command("cache", _cli_cache.SUMMARY, _cli_cache.DESCRIPTION, _cli_cache.EXAMPLE)
    _cli_cache.add_arguments(cache, common)
    return parser


def _add_common_options(parser: argparse.ArgumentParser, *, default_config: Any, default_debug: Any,
                        config_help: str = "config file to use (default: the search order)") -> None:
    parser.add_argument("--config", metavar="PATH", default=default_config, help=config_help)
    parser.add_argument(
        "--debug", action="store_true", default=default_debug, help="show tracebacks and debug logs"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`provider-kit health --json | head -1`): stop quietly.
        silence_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: List[str]) -> int:
    parser = _build_parser()
    try:
        args, extras = parser.parse_command_line(argv)
        if extras:
            reject_extras(parser, getattr(args, "command", None), extras)
        if args.command is None:
            sys.stderr.write(parser.format_short_help())
            return EXIT_USAGE
        if args.command in _SIMULATOR_COMMANDS and args.config is not None:
            parser.command_parser(args.command).error(  # type: ignore[union-attr]
                f"{args.command} takes no --config: it runs against its own local simulators "
                "(to check a configuration: provider-kit --config PATH health)")
    except SystemExit as exit:  # --help, --version and usage errors; main() returns, never exits
        return exit.code if isinstance(exit.code, int) else EXIT_USAGE
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")
    try:
        handler = _COMMANDS[args.command]
        return handler(args, sys.stdout)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ProviderKitError as error:
        if args.debug:
            traceback.print_exc()
        print(f"provider-kit: error: {error}", file=sys.stderr)
        return EXIT_PROVIDER_ERROR if isinstance(error, ProviderError) else EXIT_CONFIG_ERROR


def _registry(args: argparse.Namespace) -> ProviderRegistry:
    # Each skip is printed once, by _print_skips, and not a second time as a Python warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProviderSkippedWarning)
        registry = ProviderRegistry.from_config(args.config)
    _print_skips(registry)
    return registry


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _print_skips(registry: ProviderRegistry) -> None:
    """One line on stderr per skipped provider, whatever the command."""
    for name, reason in registry.skipped.items():
        print(f"provider-kit: skipped provider {name!r}: {_one_line(reason)}", file=sys.stderr)


def _skipped_default(registry: ProviderRegistry) -> Optional[str]:
    """The reason the configured ``default_provider`` was skipped, or None when it was not."""
    configured = registry.default_provider
    return registry.skipped.get(configured) if configured is not None else None


def _cmd_providers(args: argparse.Namespace, out: TextIO) -> int:
    with _registry(args) as registry:
        rows: List[List[str]] = [["NAME", "TYPE", "MODEL", "BASE URL", "KEY"]]
        for name in registry.names():
            info = _describe(registry[name])
            rows.append([name, info.get("type", "?"), str(info.get("model") or "-"),
                         str(info.get("base_url") or "-"), str(info.get("api_key", "-"))])
        _print_table(rows, out)
        configured = registry.default_provider
        chosen = registry.get_default().name
        skipped_default = _skipped_default(registry)
        if configured == chosen:
            note = ""
        elif configured is None:
            note = " (first alphabetically)"
        elif skipped_default is not None:
            note = f" (default_provider {configured!r} was skipped: {_one_line(skipped_default)})"
        else:
            note = f" (default_provider {configured!r} names no configured provider; first alphabetically)"
        print(f"\ndefault: {chosen}{note}", file=out)
        if registry.skipped:
            print("\nskipped:", file=out)
            for name, reason in registry.skipped.items():
                print(f"  {name}: {_one_line(reason)}", file=out)
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
        skipped = registry.skipped
        named = list(dict.fromkeys(args.names))
        # A provider named on the command line that was skipped is a SKIP row, not an unknown name.
        checked = [name for name in named if name not in skipped]
        report = None
        if checked or not named:
            report = registry.health_check_all(timeout=args.timeout, names=checked if named else None)
        shown_skips = {name: reason for name, reason in skipped.items() if not named or name in named}
        # Skipping what was asked for fails: a name given, or else the configured default.
        failed_skip = bool(shown_skips) if named else _skipped_default(registry) is not None
    statuses = dict(report.items()) if report is not None else {}
    names = sorted([*statuses, *shown_skips])
    if args.json:
        entries: Dict[str, Any] = {}
        for name in names:
            if name in statuses:
                entries[name] = {**statuses[name].to_dict(), "skipped": False}
            else:
                entries[name] = {"name": name, "ok": False, "latency_s": None, "error": _one_line(shown_skips[name]),
                                 "checked_at": None, "circuit": None, "skipped": True}
        json.dump(entries, out, indent=2)
        out.write("\n")
    else:
        rows = [["PROVIDER", "STATUS", "LATENCY", "CIRCUIT", "REASON"]]
        for name in names:
            status = statuses.get(name)
            if status is None:
                rows.append([name, "SKIP", "-", "-", _one_line(shown_skips[name])])
                continue
            latency = "-" if status.latency_s is None else f"{status.latency_s * 1000:.0f} ms"
            rows.append([name, "ok" if status.ok else "FAIL", latency, _circuit(status.circuit), status.error or ""])
        _print_table(rows, out)
    healthy = report is None or report.ok
    return EXIT_OK if healthy and not failed_skip else EXIT_PROVIDER_ERROR


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
    return _cli_complete.run(args, out, _registry)


def _cmd_models(args: argparse.Namespace, out: TextIO) -> int:
    """Each provider's model listing (``provider.models()``), fetched in parallel threads."""
    from concurrent.futures import ThreadPoolExecutor, wait

    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    with _registry(args) as registry:
        names = list(dict.fromkeys(args.names)) or registry.names()
        # A provider named but skipped was reported on stderr already: it fails, it is not unknown.
        skipped = {name: registry.skipped[name] for name in names if name in registry.skipped}
        providers = {name: registry.get(name) for name in names if name not in skipped}  # unknown: exit 2
        listers = {name: getattr(provider, "models", None) for name, provider in providers.items()}
        pool = ThreadPoolExecutor(max_workers=min(8, len(names) or 1), thread_name_prefix="provider-kit-models")
        futures = {name: pool.submit(lister, timeout=args.timeout) for name, lister in listers.items()
                   if callable(lister)}
        # Each listing keeps its own deadline; the margin only covers a provider that does not.
        wait(futures.values(), timeout=args.timeout + 1)
        pool.shutdown(wait=False, cancel_futures=True)
    results: Dict[str, Dict[str, Any]] = {}
    failed = False
    for name in names:
        future = futures.get(name)
        exc = future.exception() if future is not None and future.done() else None
        if name in skipped:
            results[name] = {"ok": False, "models": [], "error": f"skipped: {_one_line(skipped[name])}"}
            failed = True
            continue
        if future is None:
            # Not a failure unless asked for by name: a plugin provider need not list models.
            error = f"{type(providers[name]).__name__} cannot list its models (it has no models())"
            failed = failed or bool(args.names)
        elif not future.done():
            error, failed = f"no answer within {args.timeout:g} s", True
        elif exc is not None:
            error = _one_line(str(exc) if isinstance(exc, ProviderKitError) else f"{type(exc).__name__}: {exc}")
            if error.startswith(f"{name}: "):
                error = error[len(name) + 2 :]
            failed = True
        else:
            results[name] = {"ok": True, "models": [str(model) for model in future.result()], "error": None}
            continue
        results[name] = {"ok": False, "models": [], "error": error}
        print(f"provider-kit: error: {name}: {error}", file=sys.stderr)
    if args.json:
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        for name, result in results.items():
            if result["ok"]:
                print(name, file=out)
                for model in result["models"]:
                    print(f"  {model}", file=out)
    return EXIT_PROVIDER_ERROR if failed else EXIT_OK


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
    "models": _cmd_models,
    "config": _cmd_config,
    "demo": _cmd_demo,
    "serve": _cli_serve.run,
    "logs": _cli_logs.run,
    "cache": _cli_cache.run,
}
