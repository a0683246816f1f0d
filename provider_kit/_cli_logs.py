"""``provider-kit logs``: the latest calls of the call log, or its token totals per provider and
model. Which file: ``--log``, else the configuration's top-level ``log`` (found in the usual
search order), else the default file (what ``log = true`` uses).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any, Dict, List, TextIO

from ._cli_cache import duration
from ._cli_parser import EXIT_OK

SUMMARY = "show the latest calls of the call log, or token totals"
DESCRIPTION = """\
The call log keeps every call in an SQLite file (`log = true` or `log = "PATH"` at the top of
the config file). `logs` prints the latest entries, newest first: a table, or JSON lines with
--json (one object per call: time, provider, model, messages, text, error, usage...).
`logs --usage` totals calls, failures and tokens per provider and model (all of them, or
--since AGE). The file is the one --log names, else the config's `log`, else the default one."""
EXAMPLE = """\
  provider-kit logs -n 5 --provider openai
  provider-kit logs --json | jq -r .text
  provider-kit logs --usage --since 7d"""



def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", type=_count, default=20, metavar="N", help="how many entries (default 20)")
    parser.add_argument("-p", "--provider", metavar="NAME", help="only this provider's calls")
    parser.add_argument("--json", action="store_true", help="print JSON lines (JSON with --usage)")
    parser.add_argument("--usage", action="store_true", help="token totals per provider and model instead")
    parser.add_argument("--since", type=duration, metavar="AGE",
                        help="with --usage, only calls within AGE: 7d, 12h, 30m, 45s, 2w (default: all)")
    parser.add_argument("--log", metavar="PATH", help="the log file (default: the config's, else the default)")


def _log_path(args: argparse.Namespace) -> Path:
    from ._call_log import default_log_path, log_path
    from .config import load_config

    if args.log:
        return Path(args.log).expanduser()
    config = load_config(args.config)
    configured = log_path(config.log, config.source) if config.log is not None else None
    return configured or default_log_path()


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ._call_log import read_entries, read_usage

    path = _log_path(args)
    if args.usage:
        since = None
        if args.since is not None:
            since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=args.since)
        report = read_usage(path, since)
        if args.provider is not None:
            from ._usage import UsageReport

            report = UsageReport({key: value for key, value in report.items() if key[0] == args.provider})
        if args.json:
            json.dump(report.to_dict(), out, indent=2)
            out.write("\n")
        else:
            print(report, file=out)
        return EXIT_OK
    entries = read_entries(path, args.n, args.provider)
    if args.json:
        for entry in entries:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return EXIT_OK
    if not entries:
        print(f"(no calls logged in {path})", file=out)
        return EXIT_OK
    _print_entries(entries, out)
    return EXIT_OK


def _shortened(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _prompt(entry: Dict[str, Any]) -> str:
    """The last user turn's text (what the call asked), shortened."""
    for message in reversed(entry["messages"]):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(part.get("text", "[" + str(part.get("type")) + "]") for part in content
                                   if isinstance(part, dict))
            return _shortened(str(content), 40)
    return ""


def _print_entries(entries: List[Dict[str, Any]], out: TextIO) -> None:
    from ._display import text_table

    header = ["time", "provider", "model", "method", "latency", "tokens", "prompt", "answer"]
    rows = []
    for entry in entries:
        usage = entry["usage"] or {}
        tokens = "-" if not usage else f"{usage.get('input_tokens') or 0}/{usage.get('output_tokens') or 0}"
        if entry["error_type"]:
            answer = f"{entry['error_type']}: {entry['error_message'] or ''}"
        else:
            answer = entry["text"] or ""
        when = entry["time"][:19].replace("T", " ")
        rows.append([when, entry["provider"], entry["model"] or "-", entry["method"] + (" (cached)" * entry["cached"]),
                     f"{entry['latency_s'] * 1000:.0f} ms", tokens, _prompt(entry), _shortened(answer, 50)])
    print(text_table((header, rows, {4, 5})), file=out)
