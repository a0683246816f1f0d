"""One memory measurement in a fresh interpreter: peak RSS after an import, or after N calls.

Usage (by ``run.py``): ``python _child.py import MODULE`` or
``python _child.py calls CLIENT_KEY BASE_URL N``. Prints one JSON line. ``MODULE`` ``-`` measures
the interpreter alone. Only the guard (``socket``) is loaded before the measured import.
"""

from __future__ import annotations

import sys

import _guard

_guard.forbid_non_loopback()


def _peak_rss_kib() -> int:
    # VmHWM is this process's own high-water mark. ru_maxrss is not: on Linux it keeps the
    # peak from before exec, i.e. the size of the (forked) parent that started us.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    # Elsewhere ru_maxrss is the best there is: KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "import":
        if argv[1] != "-":
            __import__(argv[1])
        peak = _peak_rss_kib()
    else:
        key, base_url, count = argv[1], argv[2], int(argv[3])
        import _clients

        spec = _clients.BY_KEY[key]
        __import__(spec.module)
        client = spec.factory(base_url, 1)
        for number in range(count):
            prompt = f"memory call {number:06d}"
            text = client.complete(prompt)
            if text != "echo: " + prompt:
                raise SystemExit(f"{key}: wrong reply {text!r}")
        peak = _peak_rss_kib()
        client.close()
    import json

    print(json.dumps({"peak_rss_kib": peak, "refused": _guard.refused}))


if __name__ == "__main__":
    main(sys.argv[1:])
