"""The program that `aitax run` profiles: a script, a folder or zipapp, or a module."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aitax.errors import TargetError

TargetKind = Literal["script", "module"]


@dataclass(frozen=True)
class Target:
    """A program to run, as `python SCRIPT ARGS` or `python -m MODULE ARGS` would run it."""

    kind: TargetKind
    name: str
    args: tuple[str, ...]
    cwd: str

    @property
    def label(self) -> str:
        """A short name for report folders: the script's stem or the module's name."""
        if self.kind == "module":
            return self.name
        path = Path(self.name)
        stem = path.stem if path.suffix else path.name
        return stem or "target"

    @property
    def argv(self) -> list[str]:
        """The command line as the user would type it to run the target under python."""
        if self.kind == "module":
            return ["python", "-m", self.name, *self.args]
        return ["python", self.name, *self.args]


def script_target(script: str, args: list[str], cwd: str | None = None) -> Target:
    """Validate `script` and return its target; raise TargetError on a bad script."""
    workdir = cwd or os.getcwd()
    path = Path(workdir, script)
    if not path.exists():
        raise TargetError(f"script {script!r} not found; check the path, or use -m for a module")
    if path.is_dir():
        _check_folder_target(path, script)
    elif zipfile.is_zipfile(path):
        _check_zipapp_target(path, script)
    else:
        _check_python_source(path, script)
    return Target("script", script, tuple(args), workdir)


def module_target(module: str, args: list[str], cwd: str | None = None) -> Target:
    """Validate that `module` can be found from the working directory, and return its target."""
    workdir = cwd or os.getcwd()
    if not module or module.startswith(".") or not all(p.isidentifier() for p in module.split(".")):
        raise TargetError(f"module name {module!r} is invalid; pass a dotted name such as pkg.mod")
    spec = _find_module(module, workdir)
    if spec is None:
        raise TargetError(
            f"module {module!r} not found from {workdir}; run from the folder that contains it"
        )
    if (
        spec.submodule_search_locations is not None
        and _find_module(module + ".__main__", workdir) is None
    ):
        raise TargetError(
            f"package {module!r} has no __main__ module; pass a module, or add {module}/__main__.py"
        )
    return Target("module", module, tuple(args), workdir)


def target_source(target: Target) -> Path | None:
    """Return the path that runs as __main__: the script, folder or zipapp, or the module's file.

    Returns None for a module without a file, such as a built-in or frozen one.
    """
    if target.kind == "script":
        return Path(target.cwd, target.name)
    spec = _find_module(target.name, target.cwd)
    if spec is not None and spec.submodule_search_locations is not None:
        spec = _find_module(target.name + ".__main__", target.cwd)
    if spec is None or not spec.has_location or spec.origin is None:
        return None
    return Path(target.cwd, spec.origin)


def _find_module(module: str, workdir: str) -> importlib.machinery.ModuleSpec | None:
    import sys

    sys.path.insert(0, workdir)
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    finally:
        sys.path.remove(workdir)


def _check_folder_target(path: Path, script: str) -> None:
    if not (path / "__main__.py").is_file():
        raise TargetError(
            f"folder {script!r} has no __main__.py; pass a script, or a folder that has one"
        )
    _check_python_source(path / "__main__.py", str(Path(script, "__main__.py")))


def _check_zipapp_target(path: Path, script: str) -> None:
    with zipfile.ZipFile(path) as archive:
        if "__main__.py" not in archive.namelist():
            raise TargetError(
                f"zip file {script!r} has no __main__.py; build it with python -m zipapp"
            )


def _check_python_source(path: Path, script: str) -> None:
    try:
        with tokenize.open(path) as handle:
            source = handle.read()
    except (SyntaxError, UnicodeDecodeError) as error:
        raise TargetError(
            f"{script!r} is not a Python source file ({error}); pass a .py script"
        ) from None
    except OSError as error:
        raise TargetError(
            f"cannot read {script!r}: {error.strerror}; check its permissions"
        ) from None

    if "\0" in source:
        raise TargetError(f"{script!r} is not a Python source file; pass a .py script")

    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        raise TargetError(
            f"syntax error in {script!r} at line {error.lineno}: {error.msg}; fix the script"
        ) from None
