"""Frames of CPU samples: parsing pyinstrument's frame identifiers, and telling user code apart."""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass
from functools import lru_cache

import aitax

# pyinstrument writes a frame as "function\x00file\x00first line", followed by
# attributes that each start with \x01: "c<class name>" and "l<current line>".
_IDENTIFIER_SEP = "\x00"
_ATTRIBUTE_SEP = "\x01"
_BUILTIN_FILE = "<built-in>"

# Files of the frames that aitax's sampler inserts and that no code runs in: a
# thread's root ("MainThread" in "<thread>") and "[N frames elided]" in "<aitax>",
# as capture/sampler.py writes them.
PSEUDO_FRAME_FILES = frozenset({"<thread>", "<aitax>"})

AITAX_DIR = os.path.dirname(os.path.abspath(aitax.__file__))
_RUNPY_FILES = (os.path.abspath(runpy.__file__), "<frozen runpy>")


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One function in a sampled stack."""

    function: str
    file: str
    line: int
    module: str | None
    user_code: bool
    builtin: bool

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ModuleResolver:
    """Maps file paths to module names with the target's `sys.path` and installation prefixes."""

    sys_path: tuple[str, ...]
    sys_prefixes: tuple[str, ...]

    def module_of(self, file: str) -> str | None:
        return _module_of(file, self.sys_path)

    def is_user_code(self, file: str) -> bool:
        """Return True for code that is neither the standard library nor installed packages."""
        if file in ("<string>", "<stdin>"):
            return True
        if file.startswith("<"):
            return False
        if "site-packages" in file or "dist-packages" in file:
            return False
        return not any(_is_under(file, prefix) for prefix in self.sys_prefixes)


def _is_under(file: str, folder: str) -> bool:
    return bool(folder) and (file == folder or file.startswith(folder.rstrip(os.sep) + os.sep))


@lru_cache(maxsize=65536)
def _module_of(file: str, sys_path: tuple[str, ...]) -> str | None:
    if file.startswith("<"):
        return None
    best = ""
    for entry in sys_path:
        if entry and _is_under(file, entry) and len(entry) > len(best):
            best = entry
    if not best:
        return None
    relative = os.path.relpath(file, best)
    stem, _ = os.path.splitext(relative)
    parts = [part for part in stem.split(os.sep) if part]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or None


@lru_cache(maxsize=262144)
def _split_identifier(frame_id: str) -> tuple[str, str, int, str | None]:
    identifier, _, attributes = frame_id.partition(_ATTRIBUTE_SEP)
    function, file, line = [*identifier.split(_IDENTIFIER_SEP), "", "", "0"][:3]
    class_name = None
    for attribute in attributes.split(_ATTRIBUTE_SEP) if attributes else ():
        if attribute.startswith("c"):
            class_name = attribute[1:]
    try:
        line_number = int(line)
    except ValueError:
        line_number = 0
    return function, file, line_number, class_name


def parse_frame(frame_id: str, resolver: ModuleResolver) -> FrameInfo:
    """Parse one pyinstrument frame identifier."""
    function, file, line, class_name = _split_identifier(frame_id)
    if class_name and not function.startswith(class_name + "."):
        function = f"{class_name}.{function}"
    builtin = file == _BUILTIN_FILE
    return FrameInfo(
        function=function or "<unknown>",
        file=file or "<unknown>",
        line=line,
        module=None if builtin else resolver.module_of(file),
        user_code=not builtin and resolver.is_user_code(file),
        builtin=builtin,
    )


def is_harness_frame(frame: FrameInfo) -> bool:
    """Return True for aitax's own frames and the runpy frames that start the target."""
    return _is_under(frame.file, AITAX_DIR) or frame.file in _RUNPY_FILES


def is_pseudo_frame(frame: FrameInfo) -> bool:
    """Return True for the thread roots and elision markers that stand for no function."""
    return frame.file in PSEUDO_FRAME_FILES
