"""How ``provider-kit`` reads its command line: an ``argparse`` parser whose mistakes are one line.

It owns the parser class (one-line usage errors with exit status 2, "did you mean" for a
mistyped command or option), the help texts shared by every command (the key variables, the
config search order, the exit codes) and the closed-pipe exit. What each command does is in
``cli``; this module knows no command by name.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Iterable, List, NoReturn, Optional, Sequence, Tuple

from ._options import did_you_mean

EXIT_OK = 0
EXIT_PROVIDER_ERROR = 1  # a provider failed, or is unhealthy
EXIT_USAGE = 2  # a configuration or usage error (argparse uses 2 as well)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
# 128 + SIGPIPE: what a shell reports for `yes | head -1`. Not 1, which says a provider failed,
# so that `set -o pipefail` scripts can tell "the reader stopped early" from a real failure.
EXIT_BROKEN_PIPE = 141

_EPILOG_TEMPLATE = """\
examples:
  provider-kit demo                       try everything against local simulators (no key, no network)
  provider-kit health                     check every configured provider
  provider-kit complete "Hello"           one completion from the default provider
  echo "Hello" | provider-kit complete -p anthropic --stream
  provider-kit serve --write provider_kit.toml    simulators to point a notebook or a web app at

environment:
{environment}
  A key variable is sent only to its type's own host or the server its base-URL variable
  names; any other base_url in a config file needs its own api_key_env.

configuration, first found wins:
  1. --config PATH
  2. $PROVIDER_KIT_CONFIG (must exist when set)
  3. ./provider_kit.toml
  4. ~/.config/provider_kit/config.toml
  5. the providers the environment variables above describe
  `provider-kit config --path` says which one is in use.

exit status:
  0    success
  1    a provider failed, or is unhealthy (health; or the default or a NAME given was skipped)
  2    a configuration or usage error (a mistake in the config file included)
  130  interrupted (Ctrl-C)
  141  standard output was closed early (e.g. piped into head); nothing is reported
"""



def _environment_help() -> str:
    """The variables of every built-in type, read from the classes: each type's enabling
    variable (which adds a provider when no config file is found), then its other variables."""
    from .providers import PROVIDER_TYPES

    rows = []
    for type_name, cls in PROVIDER_TYPES.items():
        label, enabling = cls.display_name(), cls.enabling_env_var()
        if cls.API_KEY_ENV:
            also = f"; with no config file, adds the provider \"{type_name}\"" if enabling == cls.API_KEY_ENV else ""
            rows.append((cls.API_KEY_ENV, f"key for {label}{also}"))
        if cls.BASE_URL_ENV:
            also = f"; with no config file, adds \"{type_name}\"" if enabling == cls.BASE_URL_ENV else ""
            server = f"another {label} server than {cls.DEFAULT_BASE_URL}" if cls.DEFAULT_BASE_URL else (
                f"the {label} server (no default: each has its own address)"
            )
            rows.append((cls.BASE_URL_ENV, server + also))
    rows.append(("PROVIDER_KIT_CONFIG", "path of the config file to use"))
    width = max(len(variable) for variable, _ in rows)
    return "\n".join(f"  {variable:<{width}} {text}" for variable, text in rows)


HELP_EPILOG = _EPILOG_TEMPLATE.format(environment=_environment_help())

SHORT_HELP_HINT = (
    "Run 'provider-kit COMMAND --help' for a command's options and an example, and\n"
    "'provider-kit --help' for the key variables, the config search order and the exit codes.\n"
    "New here? 'provider-kit demo' shows everything with no key and no network.\n"
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser for people: usage errors are one line, typos get a suggestion.

    Subparsers made by :meth:`add_subparsers` are of this class too (argparse's default).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._command_action: Optional[argparse.Action] = None
        self._argv: List[str] = []

    def add_subparsers(self, **kwargs: Any) -> Any:
        self._command_action = super().add_subparsers(**kwargs)
        return self._command_action

    def command_parser(self, name: Optional[str]) -> Optional[argparse.ArgumentParser]:
        """The subparser of command ``name``, or None."""
        choices = getattr(self._command_action, "choices", None) or {}
        return choices.get(name) if name else None

    def error(self, message: str) -> NoReturn:
        """One line on stderr, then exit 2: the usage line would push the message out of sight."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_command_line(self, argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
        """``parse_known_args(argv)``, remembering ``argv`` for the suggestions."""
        self._argv = list(argv)
        return self.parse_known_args(self._argv)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse calls this for every value with choices, the command name included. It is
        # private, but CPython 3.14 hooks its own suggestions in the same place; were it ever
        # renamed, the only loss would be the suggestion.
        if action is self._command_action and action.choices is not None and value not in action.choices:
            unknown = self._unknown_option_before(value)
            if unknown:  # `--confg x health` parses x as the command; the option is the mistake
                raise argparse.ArgumentError(None, unrecognized_option(unknown, option_strings(self)))
            commands = list(action.choices)
            hint = did_you_mean(value, commands) or "."
            raise argparse.ArgumentError(None, f"unknown command {value!r}{hint} Commands: {', '.join(commands)}.")
        super()._check_value(action, value)

    def _unknown_option_before(self, value: str) -> Optional[str]:
        known = option_strings(self)
        for token in self._argv[: self._argv.index(value)] if value in self._argv else ():
            if looks_like_option(token) and not _is_known(token, known):
                return token
        return None

    def format_short_help(self) -> str:
        """The help without the epilog, and a hint where the rest is: for a bare ``provider-kit``."""
        epilog, self.epilog = self.epilog, None
        try:
            return self.format_help() + "\n" + SHORT_HELP_HINT
        finally:
            self.epilog = epilog


def option_strings(parser: argparse.ArgumentParser) -> List[str]:
    """Every option string of ``parser`` (``_actions`` is private but has been stable since 2.7)."""
    return [option for action in parser._actions for option in action.option_strings]


def looks_like_option(token: str) -> bool:
    """``--name``, ``--name=value`` or ``-x``; not ``-``, ``--`` or a negative number."""
    if not token.startswith("-") or token in ("-", "--"):
        return False
    try:
        float(token)
        return False
    except ValueError:
        return True


def _is_known(token: str, known: Iterable[str]) -> bool:
    name = token.split("=", 1)[0]
    # argparse accepts an unambiguous prefix of a long option (allow_abbrev) and -xVALUE.
    return any(option == name or (name.startswith("--") and option.startswith(name))
               or (len(option) == 2 and not name.startswith("--") and name.startswith(option))
               for option in known)


def unrecognized_option(token: str, known: Iterable[str]) -> str:
    """``unrecognized option '--timout'; did you mean '--timeout'?``"""
    name = token.split("=", 1)[0]
    return f"unrecognized option {name!r}{did_you_mean(name, known)}"


def reject_extras(parser: Parser, command: Optional[str], extras: Sequence[str]) -> NoReturn:
    """The usage error for arguments nobody accepted, from the parser that should have."""
    target = parser.command_parser(command) or parser
    options = [token for token in extras if looks_like_option(token)]
    if options:
        target.error(unrecognized_option(options[0], option_strings(target) + option_strings(parser)))
    target.error(f"unrecognized arguments: {' '.join(extras)}")


def silence_stdout() -> None:
    """After a BrokenPipeError: point stdout at /dev/null so that the interpreter's last flush
    cannot raise again (the recipe of the Python docs, "Note on SIGPIPE", in ``signal``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # no real file descriptor (an in-process caller's capture): nothing to flush later
