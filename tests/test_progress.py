"""``registry.map``'s progress bar: drawn where someone watches (a terminal, Jupyter), never into
a server's log unless asked, and always ending as one summary line.

The headless-notebook case runs a real Jupyter kernel: see test_notebook.py.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import textwrap
import threading
import types
from typing import Any, Callable, Iterator, List, Optional

import pytest

from provider_kit import ConfigError, InvalidRequestError, ProviderRegistry
from provider_kit.testing import FakeProvider

SUMMARY = re.compile(r"provider_kit map: (\d+)/(\d+) done, (\d+) failed, \d+\.\d s")


def _registry(*replies: Any) -> ProviderRegistry:
    """One fake provider whose script holds ``replies`` (then echoes)."""
    return ProviderRegistry([FakeProvider("s", replies=list(replies))])


def _one_failure() -> InvalidRequestError:
    return InvalidRequestError("s: bad", provider="s")


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("tqdm", "tqdm.std", "tqdm.auto", "tqdm.notebook"):
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type,unused-ignore]


class RecordingTqdm:
    """Stands in for a tqdm class; records how it was built and used."""

    made: List[RecordingTqdm] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self.updates, self.closed = kwargs, 0, False
        self.postfix: Optional[str] = None
        RecordingTqdm.made.append(self)

    def update(self, n: int) -> None:
        self.updates += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recording_tqdm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """``install("tqdm.std")`` puts a module holding ``RecordingTqdm`` at that name."""
    RecordingTqdm.made = []

    def install(name: str, **attributes: Any) -> None:
        module = types.ModuleType(name)
        module.tqdm = RecordingTqdm  # type: ignore[attr-defined]
        for key, value in attributes.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
        monkeypatch.setitem(sys.modules, name, module)

    yield install


@pytest.fixture
def jupyter(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process looks like a Jupyter kernel: an IPython shell with a kernel."""
    shell = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)


# -- in this process: stderr is pytest's capture, not a terminal -------------------------------


def test_by_default_nothing_is_drawn_where_nobody_watches(capsys: pytest.CaptureFixture[str]) -> None:
    results = _registry("a", _one_failure(), "c").map(["a", "b", "c"])
    assert len(results) == 3
    assert capsys.readouterr() == ("", "")


def test_progress_true_draws_the_plain_bar_and_ends_with_the_summary(
    capsys: pytest.CaptureFixture[str], no_tqdm: None
) -> None:
    _registry("a", _one_failure(), "c").map(["a", "b", "c"], max_workers=1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.startswith("\rprovider_kit map [" + "." * 24 + "] 0/3") and err.endswith("\n")
    assert err.count("\n") == 1
    drawn = err.rstrip("\n").split("\r")[1:]
    assert drawn[-2] == "provider_kit map [" + "#" * 24 + "] 3/3, 1 failed"
    last = drawn[-1]
    assert SUMMARY.fullmatch(last.rstrip()) and SUMMARY.fullmatch(last.rstrip()).groups() == ("3", "3", "1")
    assert len(last) == len(drawn[-2])  # padded: no leftover of the longer bar on a terminal


def test_progress_false_draws_nothing_even_in_jupyter(capsys: pytest.CaptureFixture[str], jupyter: None) -> None:
    _registry().map(["a", "b"], progress=False)
    assert capsys.readouterr().err == ""


def test_a_bad_progress_value_is_refused_before_any_call() -> None:
    fake = FakeProvider("s")
    registry = ProviderRegistry([fake])
    for bad in ("yes", 1, "auto", "TEXT"):
        with pytest.raises(ConfigError, match=r'progress must be None \(automatic\), True, False or "text"'):
            registry.map(["a"], progress=bad)  # type: ignore[arg-type]
    assert fake.calls == []


def test_a_stopped_batch_still_ends_with_its_summary(capsys: pytest.CaptureFixture[str], no_tqdm: None) -> None:
    with pytest.raises(InvalidRequestError):
        _registry("a", _one_failure()).map(["a", "b", "c", "d"], max_workers=1, progress=True, return_exceptions=False)
    last = capsys.readouterr().err.rstrip("\n").split("\r")[-1].rstrip()
    assert SUMMARY.fullmatch(last) and SUMMARY.fullmatch(last).groups() == ("2", "4", "1")  # type: ignore[union-attr]


def test_with_tqdm_a_text_bar_from_tqdm_std_cleared_for_the_summary(
    capsys: pytest.CaptureFixture[str], recording_tqdm: Callable[..., None]
) -> None:
    recording_tqdm("tqdm.std")
    _registry("a", _one_failure(), "c", "d").map(["a", "b", "c", "d"], progress=True)
    [bar] = RecordingTqdm.made
    assert bar.kwargs["total"] == 4 and bar.updates == 4 and bar.closed and bar.postfix == "1 failed"
    assert bar.kwargs["leave"] is False and bar.kwargs["file"] is sys.stderr
    err = capsys.readouterr().err
    assert SUMMARY.fullmatch(err.rstrip("\n")) and SUMMARY.fullmatch(err.rstrip("\n")).groups() == ("4", "4", "1")  # type: ignore[union-attr]


def test_with_real_tqdm_the_text_bar_draws_without_warnings(
    capsys: pytest.CaptureFixture[str], jupyter: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tqdm installed, ipywidgets not, in Jupyter: tqdm.auto would warn "IProgress not found"
    (a TqdmWarning, an error under this suite's warning filter); provider_kit draws tqdm's text bar."""
    pytest.importorskip("tqdm", reason="tqdm is in the test extra: pip install -e '.[test]'")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # type: ignore[arg-type]
    _registry(_one_failure()).map(["a", "b", "c"], max_workers=1)
    err = capsys.readouterr().err
    assert "Warning" not in err and "IProgress" not in err
    assert "provider_kit map:" in err.split("\n")[0] and "|" in err  # tqdm's own bar was drawn
    last = err.rstrip("\n").split("\r")[-1]
    assert SUMMARY.fullmatch(last) and SUMMARY.fullmatch(last).groups() == ("3", "3", "1")  # type: ignore[union-attr]


def test_in_jupyter_with_ipywidgets_the_widget_is_used(
    capsys: pytest.CaptureFixture[str], jupyter: None, recording_tqdm: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", types.ModuleType("ipywidgets"))
    recording_tqdm("tqdm.notebook", IProgress=object)
    _registry().map(["a", "b"])
    [widget] = RecordingTqdm.made
    assert widget.kwargs["leave"] is False and "file" not in widget.kwargs and widget.closed
    # A widget is not saved with the notebook: the summary line is what an export keeps.
    assert SUMMARY.fullmatch(capsys.readouterr().err.rstrip("\n"))

    RecordingTqdm.made = []
    _registry().map(["a", "b"], progress="text")  # asked for text: no widget
    assert RecordingTqdm.made == []
    assert SUMMARY.search(capsys.readouterr().err)


def test_in_jupyter_without_ipywidgets_no_widget_is_tried(
    capsys: pytest.CaptureFixture[str], jupyter: None, recording_tqdm: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch, no_tqdm: None,
) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # type: ignore[arg-type]
    recording_tqdm("tqdm.notebook", IProgress=None)
    _registry().map(["a", "b"])
    assert RecordingTqdm.made == []
    assert capsys.readouterr().err.startswith("\rprovider_kit map [")  # the plain bar (tqdm.std blocked)


def test_an_ipython_shell_without_a_kernel_is_not_jupyter(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: None  # type: ignore[attr-defined]  # imported, no shell running
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    _registry().map(["a"])
    assert capsys.readouterr().err == ""


# -- in a child process: stderr as a server and as a terminal have it --------------------------

SCRIPT = textwrap.dedent(
    """\
    import sys
    from provider_kit import InvalidRequestError, ProviderRegistry
    from provider_kit.testing import FakeProvider

    fake = FakeProvider("s", replies=["a", InvalidRequestError("s: bad", provider="s"), "c"])
    results = ProviderRegistry([fake]).map(["a", "b", "c"], max_workers=1, **eval(sys.argv[1]))
    print(len(results), "results")
    assert "IPython" not in sys.modules  # looking for Jupyter imports nothing
    """
)


def _run(options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, options],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=True,
    )


def test_in_a_process_without_a_terminal_map_writes_nothing_to_stderr() -> None:
    """As under Django, gunicorn or Celery: stderr is a pipe or a log file."""
    quiet = _run("{}")
    assert (quiet.stdout, quiet.stderr) == ("3 results\n", "")
    # The same process asked for a bar does draw one, so the silence above is the default's.
    forced = _run("{'progress': True}")
    assert forced.stdout == "3 results\n"
    assert SUMMARY.search(forced.stderr).groups() == ("3", "3", "1")  # type: ignore[union-attr]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_the_bar_is_drawn_by_default() -> None:
    import fcntl
    import termios

    master, slave = os.openpty()
    # A terminal has a size (a bare pty has 0 x 0, on which tqdm draws an empty bar).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    chunks: List[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child's end is closed
                return
            if not data:
                return
            chunks.append(data)

    try:
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        child = subprocess.run(
            [sys.executable, "-c", SCRIPT, "{}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60, check=True,
        )
        os.close(slave)
        slave = -1
        reader.join(30)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert child.stdout == "3 results\n"
    terminal = b"".join(chunks).decode("utf-8", "replace")
    summary = SUMMARY.search(terminal)
    assert summary and summary.groups() == ("3", "3", "1")
    assert "provider_kit map" in terminal[: summary.start()]  # a bar was drawn before it


# -- waiting on a rate limit ------------------------------------------------------------------


def test_the_plain_bar_says_when_calls_wait_on_a_rate_limit(
    capsys: pytest.CaptureFixture[str], no_tqdm: None
) -> None:
    from _kinds import CLASSES, SOME_KIND

    from provider_kit.testing import LoopbackServer

    with LoopbackServer(SOME_KIND) as server:
        # 120 requests a minute: two at once, then one every 0.5 s, so the third prompt waits.
        provider = CLASSES[SOME_KIND](base_url=server.base_url, api_key="sk-test", rpm=120)
        with ProviderRegistry([provider]) as registry:
            results = registry.map(["a", "b", "c"], max_workers=3, progress=True)
    assert all(not isinstance(result, Exception) for result in results)
    drawn = capsys.readouterr().err.rstrip("\n").split("\r")[1:]
    assert any(re.search(r"\d calls? waiting on a rate limit$", line.rstrip()) for line in drawn), drawn
    assert "waiting" not in drawn[-1]  # the summary line says nothing of it
    assert SUMMARY.fullmatch(drawn[-1].rstrip())


def test_a_tqdm_bar_shows_the_wait_next_to_the_failures(recording_tqdm: Callable[..., None]) -> None:
    from provider_kit._progress import progress_bar

    recording_tqdm("tqdm.std")
    bar = progress_bar(3, True)
    assert bar is not None
    bar.update(failed=True)
    bar.waiting(2)
    assert RecordingTqdm.made[0].postfix == "1 failed, 2 calls waiting on a rate limit"
    bar.waiting(0)
    assert RecordingTqdm.made[0].postfix == "1 failed"
    bar.close()
