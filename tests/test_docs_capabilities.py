"""The documentation's capability tables say what the code does.

docs/beyond-text.rst's "What each provider type supports" is checked against each provider
class by asking it: every cell is a call prepared (checked and built, with the features applied)
by a provider of that type, which sends nothing. "no" must be a ``ConfigError`` before sending,
"yes" a request, "automatic" a request with nothing added (the server caches on its own). The
class attributes (``STRUCTURED_OUTPUT_MODES``, ``REASONING_LEVELS``, ``SAMPLING_OPTIONS``) are
where most answers come from, but a hook may refuse what an attribute lists (Anthropic's
``json=True``), so the behaviour is what is compared. docs/providers.rst's presets table
beyond text is checked against the rows of ``PRESETS``, and the reasoning mapping against the
bodies the types build. The pages' examples run in tests/test_docs_examples.py; here, what
they print is checked too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from _rst_examples import DOCS, run_examples, simulated_world

from provider_kit import ConfigError, Image
from provider_kit.providers import BUILTIN_TYPES, PRESETS, PROVIDER_TYPES

PAGE = DOCS / "beyond-text.rst"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}

#: Each row of the table -> the call that asks for it (the prompt, and the keyword arguments).
CALLS: Dict[str, Any] = {
    "image bytes": (["Describe it.", Image.from_bytes(PNG)], {}),
    "image URL": (["Describe it.", Image.from_url("https://example.com/cat.png")], {}),
    "``schema=``": ("Classify.", {"schema": SCHEMA}),
    "``json=True``": ("Answer in json.", {"json": True}),
    "``reasoning=`` level": ("Think.", {"reasoning": "low", "max_tokens": 20_000}),
    "``reasoning=False``": ("Think.", {"reasoning": False}),
    "``top_p``": ("Hi.", {"top_p": 0.97}),
    "``seed``": ("Hi.", {"seed": 7}),
    "``cache=True``": ("Hi.", {"cache": True}),
}


def list_table(page: Path, title: str) -> List[List[str]]:
    """The rows of the ``list-table`` called ``title``: each row's cells, a cell's wrapped
    lines joined with a space."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(f".. list-table:: {title}")
    rows: List[List[str]] = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith(" "):
            break
        if line.startswith("   * - "):
            rows.append([line[len("   * - "):]])
        elif line.startswith("     - "):
            rows[-1].append(line[len("     - "):])
        elif line.startswith("       ") and rows:
            rows[-1][-1] += " " + line.strip()
    return rows


def provider_of(type_name: str, **options: Any) -> Any:
    """A provider of the type, pointed nowhere (``_prepare`` sends nothing). A type with no
    default host (Azure) is given an endpoint of its own."""
    cls = PROVIDER_TYPES[type_name]
    base_url = "http://127.0.0.1:9" if cls.DEFAULT_BASE_URL else "https://example.openai.azure.com"
    return cls(type_name, base_url=base_url, api_key="sk-test",
               model=options.pop("model", None) or cls.DEFAULT_MODEL or "some-model", **options)


def column_with(table: Dict[str, Dict[str, str]], row: str, note: str) -> str:
    """The one type whose cell in ``row`` carries ``note``."""
    (kind,) = [kind for kind, cell in table[row].items() if note in cell]
    return kind


def prepared_body(provider: Any, prompt: Any, arguments: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The body ``provider`` would send for the call, or None when it refuses it (ConfigError)."""
    try:
        _, request, _, _ = provider._prepare(prompt, None, False, **arguments)
    except ConfigError:
        return None
    return dict(request.body)


@pytest.fixture(scope="module")
def table() -> Dict[str, Dict[str, str]]:
    header, *rows = list_table(PAGE, "Capabilities")
    types = [cell.strip("`") for cell in header[1:]]
    return {row[0]: dict(zip(types, row[1:])) for row in rows}


def test_the_table_has_a_column_per_built_in_type_and_a_row_per_call(table) -> None:
    assert list(table) == list(CALLS)
    for cells in table.values():
        assert sorted(cells) == sorted(BUILTIN_TYPES)
        assert all(re.match(r"(yes|no|automatic)\b", cell) for cell in cells.values()), cells


@pytest.mark.parametrize("type_name", list(BUILTIN_TYPES))
def test_each_cell_is_what_a_provider_of_the_type_does(table, type_name) -> None:
    with provider_of(type_name) as provider:
        plain = {key: value for key, value in (prepared_body(provider, "Hi.", {}) or {}).items()}
        for row, (prompt, arguments) in CALLS.items():
            cell = table[row][type_name]
            body = prepared_body(provider, prompt, arguments)
            where = f"{row} / {type_name}: the table says {cell!r}"
            if cell.startswith("no"):
                assert body is None, f"{where}, but the call is sent"
            else:
                assert body is not None, f"{where}, but the call is refused"
            if row == "``cache=True``" and body is not None:
                assert (body == plain) == cell.startswith("automatic"), f"{where}, and the body is {body}"


def test_the_notes_in_the_cells_hold(table) -> None:
    # "yes (no GIF)": a GIF is refused; "yes (up to N MB)": the limit refuses an image above it.
    with provider_of(column_with(table, "image bytes", "no GIF")) as provider:
        assert prepared_body(provider, ["Describe it.", Image.from_bytes(GIF)], {}) is None
        assert prepared_body(provider, ["Describe it.", Image.from_bytes(PNG)], {}) is not None
    kind = column_with(table, "image bytes", "MB)")
    megabytes = int(re.search(r"up to (\d+) MB", table["image bytes"][kind]).group(1))
    limit = megabytes * 1024 * 1024
    with provider_of(kind) as provider:
        over = PNG + b"\x00" * (limit * 3 // 4 + 16 - len(PNG))  # its base64 just over the limit
        assert prepared_body(provider, ["Describe it.", Image.from_bytes(over)], {}) is None
        under = PNG + b"\x00" * (limit * 3 // 4 - 1024)
        assert prepared_body(provider, ["Describe it.", Image.from_bytes(under)], {}) is not None
    # "classic: api-version D on": refused with the version before D, sent with D.
    kind = column_with(table, "``schema=``", "classic")
    for row in (row for row in CALLS if "classic" in table[row][kind]):
        since = re.search(r"api-version (\d{4}-\d\d-\d\d) on", table[row][kind]).group(1)
        year, month, _ = since.split("-")
        before = f"{year}-{int(month) - 1:02d}-01-preview" if month != "01" else f"{int(year) - 1}-12-01-preview"
        prompt, arguments = CALLS[row]
        with provider_of(kind, api_version=before) as old:
            assert prepared_body(old, prompt, arguments) is None, f"{row}: api-version {before} is refused"
        with provider_of(kind, api_version=f"{since}-preview") as new:
            assert prepared_body(new, prompt, arguments) is not None, f"{row}: api-version {since} is sent"


def test_the_reasoning_table_is_what_the_types_send() -> None:
    header, *body_rows = list_table(PAGE, "reasoning= on the wire")
    # A column is headed by its type's display name ("OpenAI, Azure, presets": the first).
    names = {cls.display_name().lower(): kind for kind, cls in BUILTIN_TYPES.items()}
    kinds = [names[cell.split()[0].rstrip(",").lower()] for cell in header[1:]]
    rows = {row[0]: row[1:] for row in body_rows}
    levels = {'``"low"``': "low", '``"medium"``': "medium", '``"high"``': "high", "``False``": False}
    assert list(rows) == list(levels) and len(set(kinds)) == len(kinds) == 3
    for label, level in levels.items():
        for kind, cell in zip(kinds, rows[label]):
            # Each type's default model; Anthropic's thinks with a budget (the column's models).
            with provider_of(kind) as provider:
                body = prepared_body(provider, "Think.", {"reasoning": level, "max_tokens": 20_000})
            added = {key: value for key, value in body.items() if key not in prepared_body_plain(kind)}
            if not added:
                assert cell.startswith("nothing"), f"{kind} {label}: {cell}"
            else:
                ((key, value),) = [(k, v) for k, v in added.items() if k != "max_tokens"]
                assert cell.split(";")[0] == f"``{key}: {json.dumps(value)}``", f"{kind} {label}: {cell}"
    # reasoning=False on the presets with a switch of their own.
    for preset in PRESETS:
        if preset.reasoning_off is not None:
            with provider_of(preset.name, model="some-model") as provider:
                body = prepared_body(provider, "Think.", {"reasoning": False})
                for key, value in preset.reasoning_off.items():
                    assert body[key] == value
                    assert f"``{key}: {json.dumps(value)}``" in rows["``False``"][0], preset.name


def prepared_body_plain(kind: str) -> Dict[str, Any]:
    with provider_of(kind) as provider:
        return prepared_body(provider, "Think.", {"max_tokens": 20_000}) or {}


def test_the_presets_table_beyond_text_is_the_rows_of_presets() -> None:
    header, *rows = list_table(DOCS / "providers.rst", "Presets beyond plain text")
    assert header[0] == "Type"
    listed = {row[0].strip("`"): row for row in rows}
    assert list(listed) == [preset.name for preset in PRESETS]
    names = {"schema": "``schema=``", "json": "``json=True``"}
    for preset in PRESETS:
        modes, field, off, seed = listed[preset.name][1:]
        assert modes == ", ".join(names[mode] for mode in preset.structured_output)
        cls = PROVIDER_TYPES[preset.name]
        assert {names[mode] for mode in cls.STRUCTURED_OUTPUT_MODES} == set(modes.split(", "))
        assert field.startswith(f"``{preset.reasoning_field}``" if preset.reasoning_field else "none")
        assert ("(sent back)" in field) == preset.echo_reasoning == cls.ECHO_REASONING
        expected_off = json.dumps(dict(cls.REASONING_OFF))
        assert off == (f"``{expected_off}``" if preset.reasoning_off else '``reasoning_effort: "none"``')
        assert seed == f"``{preset.seed_field}``" == f"``{cls.SEED_FIELD}``"


def test_the_page_examples_show_each_feature_working(monkeypatch) -> None:
    # Running is not enough: each example prints what only a working feature prints.
    from test_docs_examples import world_config

    with simulated_world(monkeypatch, world_config()) as servers:
        printed = run_examples(PAGE)
        assert not any(server.errors for server in servers.values())
        bodies = [request.json() for server in servers.values() for request in server.requests
                  if request.method == "POST"]
    assert "Image(media_type='image/jpeg', size=134)" in printed
    assert printed.count("134 bytes") == 2  # two simulators saw the receipt
    assert "an image URL in a 'user' message" in printed
    assert "Invoice {'number': " in printed and "{'category': 'billing'}" in printed
    assert "declined: I can't help with that." in printed
    assert "length " in printed and "cut short by max_tokens" in printed
    assert "Invoice(number=" in printed  # the stream's last chunk parsed
    counts = re.search(r"\n(\d+) (\d+)\n", printed)
    assert counts and all(int(count) > 0 for count in counts.groups())  # the cache written, then read
    assert re.search(r"seed: the \w+ provider type does not support it", printed)
    # The second turn sent the first answer back with its signed thinking blocks, first.
    turns = [body["messages"] for body in bodies if any(m.get("content") == "And 1009?" for m in body["messages"])]
    assert len(turns) == 1 and [m["role"] for m in turns[0]] == ["user", "assistant", "user"]
    assert turns[0][1]["content"][0]["type"] == "thinking" and turns[0][1]["content"][0].get("signature")
