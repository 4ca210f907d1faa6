"""The line pass: line_profiler on the functions chosen from the CPU pass.

line_profiler needs the function objects. Functions in the script and in user
modules are found in the source instead: each `def` that matches a target gets
one more decorator, innermost, which registers the undecorated function with the
profiler when the `def` runs. That reaches methods, nested functions and
closures, and profiles the function a decorator wraps rather than its wrapper.
Functions named by `module:qualname` in modules that are already imported are
resolved by attribute lookup, through their `__wrapped__` chain.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import linecache
import logging
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from line_profiler import LineProfiler

from aitax.capture.passes import BasePass
from aitax.markers import Recorder

logger = logging.getLogger(__name__)

REGISTER_NAME = "register_line_target"


@dataclass(frozen=True)
class LineTarget:
    """A function to line-profile: by definition site, or by module and qualified name."""

    file: str | None
    line: int | None
    qualname: str | None
    module: str | None
    label: str


@dataclass
class _Registry:
    profiler: LineProfiler
    padded: dict[types.CodeType, types.CodeType] = field(default_factory=dict)
    registered: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


_registry: _Registry | None = None


def register_line_target(label: str) -> Callable[[Any], Any]:
    """Return a decorator that registers the function it decorates with the line profiler."""

    def decorate(func: Any) -> Any:
        if _registry is not None:
            _add(_registry, func, label)
        return func

    return decorate


def _add(registry: _Registry, func: Any, label: str) -> None:
    code = getattr(func, "__code__", None)
    if code is None:
        registry.problems[label] = "it is not a Python function (a C function or a callable object)"
        return

    # Each closure made by one `def` shares a code object: pad it once and reuse it.
    padded = registry.padded.get(code)
    if padded is not None:
        func.__code__ = padded
        return
    registry.profiler.add_function(func)
    registry.padded[code] = func.__code__
    registry.registered.setdefault(label, []).append(
        f"{func.__code__.co_filename}:{func.__code__.co_firstlineno}"
    )


class _Decorate(ast.NodeTransformer):
    """Add the registering decorator to each `def` that matches a target."""

    def __init__(self, by_line: dict[int, str], by_qualname: dict[str, str]) -> None:
        self.by_line = by_line
        self.by_qualname = by_qualname
        self.scope: list[str] = []
        self.matched: set[str] = set()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        qualname = ".".join([*self.scope, node.name])
        first_lines = {node.lineno, *(d.lineno for d in node.decorator_list)}
        label = next((self.by_line[n] for n in first_lines if n in self.by_line), None)
        label = label or self.by_qualname.get(qualname)
        if label is not None:
            self.matched.add(label)
            node.decorator_list.append(_decorator_call(label, node.lineno))

        self.scope.extend([node.name, "<locals>"])
        self.generic_visit(node)
        del self.scope[-2:]
        return node

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()
        return node


def _decorator_call(label: str, lineno: int) -> ast.expr:
    # __import__("aitax.capture.lines").capture.lines.register_line_target(label)
    source = f"__import__('aitax.capture.lines').capture.lines.{REGISTER_NAME}({label!r})"
    expression = ast.parse(source, mode="eval").body
    for node in ast.walk(expression):
        node.lineno = node.end_lineno = lineno  # type: ignore[attr-defined]
        node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    return expression


def decorate_source(
    source: bytes, path: str, targets: Sequence[LineTarget], module: str | None
) -> tuple[types.CodeType, set[str]]:
    """Compile `source` with the targets in it decorated; return the code and the matched labels."""
    by_line = {t.line: t.label for t in targets if t.file == path and t.line is not None}
    by_qualname = {
        t.qualname: t.label
        for t in targets
        if t.qualname and t.module is not None and t.module == module
    }
    tree = ast.parse(source, filename=path)
    transformer = _Decorate(by_line, by_qualname)
    tree = transformer.visit(tree)
    return compile(tree, path, "exec", dont_inherit=True), transformer.matched


class _DecoratingLoader(importlib.machinery.SourceFileLoader):
    """Compile a user module with its targets decorated, skipping the bytecode cache."""

    pass_ref: LinePass

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        code, matched = decorate_source(source, path, self.pass_ref.targets, fullname)
        self.pass_ref.matched.update(matched)
        return code


class _Finder(importlib.abc.MetaPathFinder):
    """Route modules that hold targets through the decorating loader."""

    def __init__(self, line_pass: LinePass) -> None:
        self.line_pass = line_pass

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        if not self.line_pass.wants(fullname, spec.origin):
            return spec
        loader = _DecoratingLoader(fullname, spec.origin or "")
        loader.pass_ref = self.line_pass
        spec.loader = loader
        return spec


class LinePass(BasePass):
    """Line-profile the chosen functions while the target runs."""

    def __init__(self, targets: Sequence[dict[str, Any]], by_name: Sequence[str]) -> None:
        self.targets = [LineTarget(**t) for t in targets] + [_parse_name(n) for n in by_name]
        self.files = {t.file for t in self.targets if t.file}
        self.modules = {t.module for t in self.targets if t.module}
        self.matched: set[str] = set()
        self.profiler = LineProfiler()
        self.registry = _Registry(self.profiler)
        self.finder = _Finder(self)

    def wants(self, module: str, origin: str | None) -> bool:
        return module in self.modules or (origin is not None and origin in self.files)

    def compile_script(self, source: bytes, path: str) -> types.CodeType:
        code, matched = decorate_source(source, path, self.targets, "__main__")
        self.matched.update(matched)
        return code

    def start(self, recorder: Recorder) -> None:
        global _registry
        _registry = self.registry
        sys.meta_path.insert(0, self.finder)
        self._resolve_imported()
        self.profiler.enable_by_count()
        self.hook = sys.gettrace()

    def stop(self, out_dir: Path) -> dict[str, Any]:
        global _registry
        # On Python before 3.12, line_profiler uses the trace hook, which sys.settrace replaces.
        displaced = sys.version_info < (3, 12) and sys.gettrace() is not self.hook
        if displaced:
            logger.warning("the target replaced the line profiler's trace hook")
            sys.settrace(self.hook)
        self.profiler.disable_by_count()
        sys.meta_path.remove(self.finder)
        _registry = None
        return {"line_functions": self._results(), "hook_displaced": displaced}

    def _resolve_imported(self) -> None:
        """Add targets named by module:qualname whose module is already imported."""
        for target in self.targets:
            if target.module and target.qualname and target.module in sys.modules:
                obj = _lookup(sys.modules[target.module], target.qualname)
                if obj is None:
                    self.registry.problems[target.label] = (
                        f"{target.qualname} not found in {target.module}"
                    )
                    continue
                self.matched.add(target.label)
                _add(self.registry, inspect.unwrap(obj), target.label)

    def _results(self) -> list[dict[str, Any]]:
        stats = self.profiler.get_stats()
        by_site = {
            (file, line): (name, timings) for (file, line, name), timings in stats.timings.items()
        }
        results = []
        for target in self.targets:
            results.append(self._result(target, by_site, stats.unit))
        return results

    def _result(
        self, target: LineTarget, by_site: dict[tuple[str, int], Any], unit: float
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "label": target.label,
            "function": target.qualname or target.label,
            "file": target.file,
            "line": target.line,
        }
        sites = self.registry.registered.get(target.label, [])
        if target.label in self.registry.problems:
            return {**result, "reason": self.registry.problems[target.label]}
        if not sites:
            reason = (
                "its definition was not found in the source"
                if target.label not in self.matched
                else "the function was never defined during the line pass"
            )
            return {**result, "reason": reason}

        file, _, line = sites[0].rpartition(":")
        entry = by_site.get((file, int(line)))
        timings = entry[1] if entry else []
        if not timings:
            return {
                **result,
                "file": file,
                "line": int(line),
                "reason": "line_profiler recorded no hits (never called in this pass, or "
                "asynchronous code that line_profiler does not trace)",
            }
        return {
            **result,
            "file": file,
            "line": int(line),
            "lines": [
                [lineno, hits, time * unit, linecache.getline(file, lineno).rstrip("\n")]
                for lineno, hits, time in sorted(timings)
            ],
        }


def _parse_name(name: str) -> LineTarget:
    module, _, qualname = name.partition(":")
    return LineTarget(None, None, qualname or None, module or None, name)


def _lookup(module: types.ModuleType, qualname: str) -> Any:
    obj: Any = module
    for part in qualname.split("."):
        if part == "<locals>":
            return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj
