"""The command line of ``provider-kit serve``: its help, its options and their checks.

The simulators themselves are in ``_serve``, imported only when the command runs, so that
``provider-kit health`` does not pay for loading them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, TextIO

SUMMARY = "run local simulators of the three protocols until Ctrl-C"
DESCRIPTION = """\
Start simulators of the OpenAI, Anthropic and Ollama protocols on 127.0.0.1 and print a
provider_kit.toml pointing at them (or --write it), then a line '# ready: ...'. Everything
printed on standard output is TOML, so `provider-kit serve > provider_kit.toml` works too.
Use them to try the CLI, a notebook or a web app with no key: they answer "echo: <prompt>",
no real model runs. The api_key values in that config are made-up test keys that only these
simulators check, printed on purpose. Each request is logged on stderr (unless --quiet).
Ctrl-C or SIGTERM stops them (exit status 0); a written config is left in place."""
EXAMPLE = """\
  provider-kit serve --port 8800 --latency 0.05 --fail-every 5 --write provider_kit.toml
  provider-kit health            # in another terminal, in the same directory"""


def _checked(kind: Callable[[str], Any], test: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse ``type``: convert with ``kind``, accept only values that pass ``test``."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
        return value

    return convert


_port = _checked(int, lambda v: 0 <= v <= 65533, "0, or the first of three free ports (1 to 65533)")
_seconds = _checked(float, lambda v: 0 <= v < float("inf"), "a number of seconds >= 0")
_positive = _checked(int, lambda v: v >= 1, "a whole number >= 1")
_probability = _checked(float, lambda v: 0 <= v <= 1, "a probability from 0 to 1")
_error_status = _checked(int, lambda v: 400 <= v <= 599, "an HTTP error status, 400 to 599")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve``."""
    parser.add_argument("--port", type=_port, default=0, metavar="N",
                        help="openai on N, anthropic on N+1, ollama on N+2 (default 0: free ports)")
    parser.add_argument("--write", metavar="PATH", help="write the config to PATH instead of printing it")
    parser.add_argument("--latency", type=_seconds, default=0.0, metavar="S",
                        help="seconds to wait before each answer and between stream chunks (default 0)")
    parser.add_argument("--fail-every", type=_positive, metavar="N",
                        help="fail every Nth completion request of each simulator")
    parser.add_argument("--fail-rate", type=_probability, default=0.0, metavar="P",
                        help="fail each completion request with probability P, 0 to 1 (default 0)")
    parser.add_argument("--fail-status", type=_error_status, default=500, metavar="CODE",
                        help="HTTP status of a simulated failure (default 500; 429 and 503 are retried too)")
    parser.add_argument("--seed", type=int, metavar="N", help="seed --fail-rate, for a repeatable run")
    parser.add_argument("--quiet", action="store_true", help="do not log each request on stderr")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``serve`` until SIGINT or SIGTERM; returns the exit code."""
    from ._serve import FailureSchedule, run_serve

    failures = FailureSchedule(args.fail_every, args.fail_rate, args.fail_status, seed=args.seed)
    return run_serve(out, sys.stderr, port=args.port, latency=args.latency, failures=failures,
                     write=args.write, quiet=args.quiet)
