"""The hooks that a pass adds around the target's execution."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Protocol

from aitax import markers


class PassHooks(Protocol):
    """What a pass adds around the target: a profiler to start and stop, and a compiler."""

    def start(self, recorder: markers.Recorder) -> None: ...

    def stop(self, out_dir: Path) -> dict[str, Any]: ...

    def compile_script(self, source: bytes, path: str) -> types.CodeType: ...


class BasePass:
    """The clean pass: markers only, and the target compiled as python compiles it."""

    def start(self, recorder: markers.Recorder) -> None:
        return None

    def stop(self, out_dir: Path) -> dict[str, Any]:
        return {}

    def compile_script(self, source: bytes, path: str) -> types.CodeType:
        return compile(source, path, "exec", dont_inherit=True)
