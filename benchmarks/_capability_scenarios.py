"""The structured-output and image scenarios: per protocol, the floor, provider_kit and the SDKs
making the same call against the same loopback server, interleaved (``_scenarios.paired_calls``).

Structured output: every client asks for ``_payloads.SCHEMA`` and gets the same canned 2 KB JSON
answer (``_payloads.install_structured_answer``), parsed; each parsed value is compared with it.
Image: one user message with text and a 28 KB PNG; the simulator describes the image it received
(type and size) in its echo, and every client of a protocol must return the same text for the
same prompt. Before measuring, ``same_wire`` checks that the floor posts exactly the body
provider_kit posts, so the ratio compares like with like.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import _capability_clients as cc
import _payloads
import _scenarios as sc
import _tool_clients

Result = Dict[str, Any]


def choose(specs: List[cc.CallSpec], keys: List[str], notes: List[str], scenario: str) -> List[cc.CallSpec]:
    """The rows whose base client was chosen (``--clients``, ``--quick``) and whose modules are installed."""
    chosen = []
    for spec in specs:
        if spec.base not in keys:
            continue
        if spec.available():
            chosen.append(spec)
        else:
            notes.append(f"{scenario}: {spec.label} skipped ({', '.join(spec.needs)} not installed).")
    return chosen


def same_wire(specs: List[cc.CallSpec], structured: bool) -> Dict[str, str]:
    """Whether the floor of each protocol posts exactly the JSON body provider_kit posts for the
    same call: ``{floor key: what differs}`` for each floor that does not (it is then not
    measured, and the run fails). A call that fails here is left to the measurement's probe."""
    from provider_kit.testing import LoopbackServer

    by_key = {spec.key: spec for spec in specs}
    errors: Dict[str, str] = {}
    for protocol in cc.PROTOCOLS:
        floor_spec, kit_spec = by_key.get(f"requests-{protocol}"), by_key.get(f"pk-{protocol}")
        if floor_spec is None or kit_spec is None:
            continue
        with LoopbackServer(protocol) as server:
            if structured:
                _payloads.install_structured_answer(server, protocol)
            bodies = []
            for spec in (floor_spec, kit_spec):
                caller = spec.factory(server.base_url)
                try:
                    caller.call("same wire")
                except Exception:
                    break
                finally:
                    caller.close()
                bodies.append(server.last_request.json())
        if len(bodies) < 2 or bodies[0] == bodies[1]:
            continue
        floor, kit = bodies
        fields = sorted(key for key in set(floor) | set(kit) if floor.get(key) != kit.get(key))
        errors[floor_spec.key] = (f"posts a body that differs from provider_kit's in {fields}: "
                                  f"{str({key: floor.get(key) for key in fields})[:200]} vs "
                                  f"{str({key: kit.get(key) for key in fields})[:200]}")
        sc.log(f"{floor_spec.key}: not measured: {errors[floor_spec.key]}")
    return errors


def _build(specs: List[cc.CallSpec], urls: Dict[str, str], suffix: str, errors: Dict[str, str],
           probe: Callable[[cc.CallSpec, Any], None]) -> Dict[str, cc.Caller]:
    """Each client built and tried once; one that fails (or already failed) is left out, its error kept."""
    callers = {}
    for spec in specs:
        if spec.key in errors:
            continue
        try:
            caller = spec.factory(urls[spec.protocol + suffix])
            probe(spec, caller.call("probe"))
        except Exception as exc:
            errors[spec.key] = f"{type(exc).__name__}: {exc}"[:200]
            sc.log(f"{spec.key}: failed its probe, skipped: {errors[spec.key]}")
            continue
        callers[spec.key] = caller
    return callers


def _measure(specs: List[cc.CallSpec], callers: Dict[str, cc.Caller], rounds: int, batch: int,
             slow: Dict[str, int], check: Callable[[str, str, Any], None], prompt: str) -> Result:
    sizes = {spec.key: max(2, batch // slow.get(spec.base, 1)) for spec in specs if spec.key in callers}
    try:
        return sc.paired_calls({key: callers[key].call for key in sizes}, rounds, sizes, check, prompt)
    finally:
        for caller in callers.values():
            caller.close()


def structured(specs: List[cc.CallSpec], urls: Dict[str, str], rounds: int, batch: int,
               slow: Dict[str, int], errors: Dict[str, str]) -> Result:
    """µs per structured-output call; every parsed answer equals the canned one."""
    expected = _payloads.structured_answer()
    plain = {spec.key: spec.plain for spec in specs}

    def check(key: str, prompt: str, result: Any) -> None:
        _payloads.expect_equal(key, plain[key](result), expected)

    callers = _build(specs, urls, "-structured", errors, lambda spec, result: check(spec.key, "probe", result))
    rows = _measure(specs, callers, rounds, batch, slow, check, _payloads.STRUCTURED_PROMPT)
    return {"rows": rows, "errors": errors}


def image(specs: List[cc.CallSpec], urls: Dict[str, str], rounds: int, batch: int, slow: Dict[str, int],
          errors: Dict[str, str]) -> Result:
    """µs per call with one image; every client of a protocol returns the same text for a prompt.

    The expected text is the first client's answer to the probe, which must describe a PNG of
    the size sent; every other client's probe must match it, and each call's answer is that
    text with the call's prompt.
    """
    templates: Dict[str, str] = {}
    protocol_of = {spec.key: spec.protocol for spec in specs}

    def probe(spec: cc.CallSpec, text: Any) -> None:
        template = templates.setdefault(spec.protocol, str(text))
        if f"{len(_payloads.PNG)} bytes" not in template or "image/png" not in template:
            raise AssertionError(f"{spec.key}: the server did not see a {len(_payloads.PNG)}-byte PNG: {template!r}")
        if text != template:
            raise AssertionError(f"{spec.key}: answered {str(text)[:100]!r}, not {template[:100]!r}")

    def check(key: str, prompt: str, text: Any) -> None:
        expected = templates[protocol_of[key]].replace("probe", prompt, 1)
        if text != expected:
            raise AssertionError(f"{key}: wrong reply {str(text)[:100]!r} for {prompt!r}")

    callers = _build(specs, urls, "", errors, probe)
    rows = _measure(specs, callers, rounds, batch, slow, check, "Describe this picture, call")
    return {"rows": rows, "errors": errors}


def tool_stream(specs: List[cc.CallSpec], urls: Dict[str, str], rounds: int, batch: int, slow: Dict[str, int],
                errors: Dict[str, str]) -> Result:
    """µs per streamed answer of two parallel tool calls in ``_tool_clients.FRAGMENTS`` fragments;
    every client must assemble the same calls (ollama-python drops the ids: compared without them)."""
    protocol_of = {spec.key: spec.protocol for spec in specs}

    def check(key: str, prompt: str, calls: Any) -> None:
        got = [tuple(call) for call in calls]
        expected = [tuple(call) for call in _tool_clients.EXPECTED]
        if key == "ollama" or (protocol_of[key] == "ollama" and key.startswith("requests")):
            got, expected = [call[1:] for call in got], [call[1:] for call in expected]
        if got != expected:
            raise AssertionError(f"{key}: assembled {str(got)[:200]}, not {str(expected)[:200]}")

    callers = _build(specs, urls, "-tools", errors, lambda spec, result: check(spec.key, "probe", result))
    rows = _measure(specs, callers, rounds, batch, slow, check, "Call both tools")
    return {"rows": rows, "errors": errors}
