"""A provider whose worker process dies when it is asked ``DIE``, as one killed by the kernel's
OOM killer or a segfault in a C extension would: for the tests of ``map(executor=...)``.

A module of its own (not a test module) so that a spawned worker imports it cheaply: a worker
unpickles the registry, which names this class by module and name.
"""

from __future__ import annotations

import os
from typing import Any

from _kinds import CLASSES, SOME_KIND

#: The prompt that kills the worker process answering it.
DIE = "please die now"


class DyingProvider(CLASSES[SOME_KIND]):  # type: ignore[misc,valid-type]
    """A provider of ``SOME_KIND`` that ends its process on ``DIE``, in a worker only: in the
    process that built it (the test's), the prompt is sent as any other."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.home_pid = os.getpid()

    def complete(self, prompt: Any, **kwargs: Any) -> Any:
        if prompt == DIE and os.getpid() != self.home_pid:
            os._exit(70)
        return super().complete(prompt, **kwargs)
