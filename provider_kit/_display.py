"""How the value types look: aligned text tables for a ``>>>`` prompt, HTML tables for Jupyter.

Pure string work on duck-typed values (anything with the attributes of a ``HealthStatus`` or a
``Completion``), so ``types`` can import it without a cycle. In both forms text columns are
left-aligned and number columns right-aligned; HTML cells say so inline, because Jupyter's
stylesheet right-aligns every cell, and inline styles are what survives export to HTML.
"""

from __future__ import annotations

import datetime
from typing import Any, Collection, Iterable, List, Mapping, Optional, Sequence, Tuple

#: A table: its header, its rows (strings), and the indexes of its number columns.
Table = Tuple[List[str], List[List[str]], Collection[int]]

_OK_COLOUR = "#2e7d32"
_FAIL_COLOUR = "#c62828"


def describe_circuit(circuit: Optional[Mapping[str, Any]]) -> str:
    """One line for a circuit-breaker state dict (see ``HealthStatus.circuit``); "" for None."""
    if not circuit:
        return ""
    state = circuit.get("state")
    failures = circuit.get("failures") or 0
    last = circuit.get("last_error")
    streak = f"{failures} failure{'' if failures == 1 else 's'} in a row"
    if state == "open":
        raw = str(circuit.get("open_until") or "")
        try:
            until = datetime.datetime.fromisoformat(raw).strftime("%H:%M:%S UTC")
        except ValueError:
            until = raw
        text = f"open until {until}, {streak}"
    elif state == "half_open":
        text = f"half-open (the next call is a trial), {streak}"
    elif failures:
        text = f"closed, {streak}"
    else:
        return "closed"
    return f"{text}; last: {last}" if last else text


def milliseconds(seconds: Optional[float], missing: str = "-") -> str:
    return missing if seconds is None else f"{seconds * 1000:.0f} ms"


def text_table(table: Table) -> str:
    """Columns two spaces apart, padded to their widest cell; trailing blanks trimmed."""
    header, rows, numeric = table
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def html_table(table: Table, colours: Sequence[Mapping[int, str]] = ()) -> str:
    """An HTML table; ``colours[row][column]`` gives a cell a text colour."""
    import html  # only notebooks need it; html.entities is slow to import

    header, rows, numeric = table

    def cell(tag: str, column: int, text: str, colour: Optional[str] = None) -> str:
        style = f"text-align:{'right' if column in numeric else 'left'}"
        if colour:
            style += f";color:{colour}"
        return f'<{tag} style="{style}">{html.escape(text)}</{tag}>'

    head = "".join(cell("th", column, text) for column, text in enumerate(header))
    body = []
    for index, row in enumerate(rows):
        row_colours = colours[index] if index < len(colours) else {}
        cells = "".join(cell("td", column, text, row_colours.get(column)) for column, text in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- health ---------------------------------------------------------------------------------


def _health_table(statuses: Iterable[Any], missing_latency: str) -> Tuple[Table, List[Mapping[int, str]]]:
    statuses = list(statuses)
    circuits = [describe_circuit(status.circuit) for status in statuses]
    # Columns that would hold nothing but blanks (no errors) or "closed" (every circuit closed,
    # none with failures) add nothing and are left out.
    with_reason = any(status.error for status in statuses)
    with_circuit = any(circuit not in ("", "closed") for circuit in circuits)
    header = ["provider", "status", "latency"]
    header += ["reason"] * with_reason + ["circuit"] * with_circuit
    rows: List[List[str]] = []
    colours: List[Mapping[int, str]] = []
    for status, circuit in zip(statuses, circuits):
        row = [status.name, "ok" if status.ok else "FAIL", milliseconds(status.latency_s, missing_latency)]
        row += [status.error or ""] * with_reason + [circuit] * with_circuit
        rows.append(row)
        colours.append({1: _OK_COLOUR if status.ok else _FAIL_COLOUR})
    return (header, rows, {2}), colours


def health_text(statuses: Iterable[Any]) -> str:
    """The aligned table of ``str(report)`` and of the report at a ``>>>`` prompt."""
    table, _ = _health_table(statuses, "-")
    return text_table(table) if table[1] else "(no providers)"


def health_html(statuses: Iterable[Any]) -> str:
    table, colours = _health_table(statuses, "")
    return html_table(table, colours)


# -- completion -----------------------------------------------------------------------------


def _completion_table(completion: Any) -> Table:
    usage = completion.usage

    def count(value: Optional[int]) -> str:
        return "-" if value is None else str(value)

    header = ["provider", "model", "finish_reason", "tokens in", "tokens out", "latency"]
    row = [
        completion.provider or "-",
        completion.model or "-",
        completion.finish_reason or "-",
        count(usage.input_tokens),
        count(usage.output_tokens),
        # An answer from the response cache says so where its latency would mislead.
        milliseconds(completion.latency_s) + (" (cached)" if getattr(completion, "cached", False) else ""),
    ]
    numeric = {3, 4, 5}
    # The usage details get a column only when the provider reported them.
    for title, key in (("cached in", "cached_input_tokens"), ("reasoning tokens", "reasoning_tokens")):
        value = getattr(usage, key, None)
        if value is not None:
            numeric.add(len(header))
            header.append(title)
            row.append(count(value))
    return header, [row], numeric


def _data_text(completion: Any) -> Optional[str]:
    """The reply's JSON ``data`` pretty-printed (the text is that JSON on one line), with a
    schema class's instance after it; None when the reply has no data."""
    data = getattr(completion, "data", None)
    if data is None:
        return None
    import json

    shown = json.dumps(data, indent=2, ensure_ascii=False, default=repr)
    parsed = getattr(completion, "parsed", None)
    if parsed is not None and not isinstance(parsed, (dict, list, str, int, float)):
        shown += f"\nparsed: {_shortened(repr(parsed), 300)}"
    return shown


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tool_call_lines(completion: Any) -> List[str]:
    """One line per tool call: ``name(arguments)  [id]``, the raw text when it is not JSON."""
    return [f"{call.name}({call.raw_arguments})  [{call.id}]" for call in getattr(completion, "tool_calls", ())]


def completion_text(completion: Any) -> str:
    """The reply, then one aligned row of what came with it; indented under a title so that a
    list of results (``registry.map``) still reads one completion at a time. A reply with
    thinking or JSON data shows each under its own heading: reasoning, then data or answer."""
    reasoning = getattr(completion, "reasoning", None)
    data = _data_text(completion)
    if not reasoning and data is None:
        lines = completion.text.splitlines() or ["(no text)"]
    else:
        lines = []
        if reasoning:
            lines += ["reasoning:", *(f"  {line}" for line in reasoning.splitlines()), ""]
        title, body = ("data:", data) if data is not None else ("answer:", completion.text)
        lines += [title, *(f"  {line}" for line in body.splitlines() or ["(no text)"])]
    calls = _tool_call_lines(completion)
    if calls:
        if lines == ["(no text)"]:
            lines = []
        lines += ["", "tool calls:", *(f"  {line}" for line in calls)] if lines else ["tool calls:", *(
            f"  {line}" for line in calls)]
    table = text_table(_completion_table(completion)).splitlines()
    return "\n".join(f"  {line}".rstrip() for line in [*lines, "", *table]).join(("Completion:\n", ""))


def completion_html(completion: Any) -> str:
    import html

    pre = "white-space:pre-wrap;text-align:left"
    parts = ["<div>"]
    reasoning = getattr(completion, "reasoning", None)
    if reasoning:
        parts.append(
            f'<details><summary style="text-align:left">reasoning</summary>'
            f'<pre style="{pre};opacity:0.7">{html.escape(reasoning)}</pre></details>'
        )
    data = _data_text(completion)
    parts.append(f'<pre style="{pre}">{html.escape(completion.text if data is None else data)}</pre>')
    calls = _tool_call_lines(completion)
    if calls:
        parts.append(f'<pre style="{pre}">tool calls:\n{html.escape(chr(10).join(calls))}</pre>')
    parts.append(f"{html_table(_completion_table(completion))}</div>")
    return "".join(parts)


# -- usage ----------------------------------------------------------------------------------

_USAGE_COLUMNS = (
    ("calls", "calls"),
    ("failures", "failed"),
    ("cache_hits", "cache hits"),
    ("input_tokens", "tokens in"),
    ("output_tokens", "tokens out"),
    ("cached_input_tokens", "cached in"),
    ("reasoning_tokens", "reasoning"),
)


def _usage_table(rows: Mapping[Tuple[str, str], Any]) -> Table:
    header = ["provider", "model", *(title for _, title in _USAGE_COLUMNS)]
    body = [
        [provider, model or "-", *(str(getattr(totals, key)) for key, _ in _USAGE_COLUMNS)]
        for (provider, model), totals in rows.items()
    ]
    return header, body, set(range(2, len(header)))


def usage_text(rows: Mapping[Tuple[str, str], Any]) -> str:
    """The aligned table of ``registry.usage()`` (a row per provider and model)."""
    return text_table(_usage_table(rows)) if rows else "(no calls)"


def usage_html(rows: Mapping[Tuple[str, str], Any]) -> str:
    return html_table(_usage_table(rows))
