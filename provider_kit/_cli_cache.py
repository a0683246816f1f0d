"""``provider-kit cache info`` and ``provider-kit cache clear``: look at and empty the response
cache. Which file: ``--path``, else the configuration's top-level ``cache`` when it names a
path, else the default file under the user's cache directory (what ``cache = true`` uses).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, Dict, Optional, TextIO

from ._cli_parser import EXIT_OK
from .config import load_config

SUMMARY = "show or clear the response cache"
DESCRIPTION = """\
The response cache keeps answers in an SQLite file (`cache = true` or `cache = "PATH"` at the
top of the config file, or response_cache in a provider's table). `cache info` shows the file,
its entries, size and the oldest and newest answer; `cache clear` deletes every answer, or with
--older-than only those stored before then. The file is the one --path names, else the
config's `cache` path, else the default one (the file `cache = true` uses)."""
EXAMPLE = """\
  provider-kit cache info
  provider-kit cache clear --older-than 7d"""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``45s``, ``2w`` (or ``1.5d``) in seconds; an argparse type."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 7d, 12h, 30m or 45s, not {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="cache_command", metavar="ACTION", title="actions",
                                    help="info or clear (each has its own --help)")
    actions.required = True
    info = actions.add_parser("info", parents=[common], help="the file, its entries, size, oldest and newest",
                              description="Show the response cache's file, entries, size and dates.")
    info.add_argument("--json", action="store_true", help="print JSON")
    clear = actions.add_parser("clear", parents=[common], help="delete answers (all, or --older-than)",
                               description="Delete the cached answers; what is deleted is overwritten.")
    clear.add_argument("--older-than", type=duration, metavar="AGE",
                       help="only answers stored more than AGE ago: 7d, 12h, 30m, 45s, 2w")
    for action in (info, clear):
        action.add_argument("--path", metavar="FILE", help="the cache file (default: the config's, else the default)")


def _cache(args: argparse.Namespace) -> Any:
    from ._response_cache import ResponseCache, default_cache_path

    if args.path:
        return ResponseCache(args.path)
    configured = load_config(args.config).cache
    if configured is None or isinstance(configured, bool):
        return ResponseCache(default_cache_path())
    return ResponseCache(configured)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - the loop always returns


def _when(value: Optional[Any]) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def run(args: argparse.Namespace, out: TextIO) -> int:
    cache = _cache(args)
    if args.cache_command == "clear":
        removed = cache.clear(older_than=args.older_than)
        what = "answer" if removed == 1 else "answers"
        age = "" if args.older_than is None else " older than the given age"
        print(f"removed {removed} {what}{age} from {cache.path}", file=out)
        return EXIT_OK
    info = cache.info()
    if args.json:
        data: Dict[str, Any] = {**info, "oldest": info["oldest"] and info["oldest"].isoformat(),
                                "newest": info["newest"] and info["newest"].isoformat()}
        json.dump(data, out, indent=2)
        out.write("\n")
        return EXIT_OK
    rows = [("path", info["path"] + ("" if info["exists"] else " (no file yet: nothing cached)")),
            ("entries", str(info["entries"])), ("size", _size(info["size_bytes"])),
            ("oldest", _when(info["oldest"])), ("newest", _when(info["newest"]))]
    for name, value in rows:
        print(f"{name:<8} {value}", file=out)
    return EXIT_OK
