"""Naming the C function that a sampled frame is calling.

A sampler that reads Python frames sees the line that calls a C function
(`time.sleep`, `sqlite3.Connection.execute`, `select.epoll.poll`), but not the
function itself. The frame's last instruction is then a CALL, and the source
positions of the instructions before it (Python 3.11 and later) show which
names and attributes were loaded to produce the callable. This module replays
those loads on the live frame, without calling any user code, and returns the
C function's qualified name as `__qualname__` gives it, which is how a profile
hook names the function in its `c_call` event.
"""

from __future__ import annotations

import dis
import inspect
import logging
import types
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

_NAME_LOADS = frozenset(
    {"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"}
)
_ATTRIBUTE_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_C_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)

# Python 3.11 runs specialized calls of C functions inside PRECALL, so a frame
# waiting in such a call stops there and not at the CALL after it.
_CALL_NAMES = frozenset(name for name in dis.opmap if name.startswith(("CALL", "PRECALL")))
_CALL_OPCODES = frozenset(dis.opmap[name] for name in _CALL_NAMES)

# One replay step: the load instruction's name and the name it loads.
LoadStep = tuple[str, str]


def called_c_function(frame: types.FrameType) -> str | None:
    """Return the qualified name of the C function that `frame` is calling, or None.

    None also covers calls of Python functions (their own frame is the leaf
    then), calls whose callable is not a plain chain of names and attributes,
    and attributes that only a property or `__getattr__` could produce.
    """
    code, offset = frame.f_code, frame.f_lasti
    # Most leaves are not calling anything: check the opcode before disassembling.
    if not 0 <= offset < len(code.co_code) or code.co_code[offset] not in _CALL_OPCODES:
        return None
    steps = load_steps(code, offset)
    if not steps:
        return None
    try:
        value = _replay(frame, steps)
    except LookupError:
        return None
    if not isinstance(value, _C_CALLABLES):
        return None
    name = getattr(value, "__qualname__", None)
    return name if isinstance(name, str) else None


@lru_cache(maxsize=16384)
def load_steps(code: types.CodeType, offset: int) -> tuple[LoadStep, ...]:
    """Return the loads that produce the callable of the CALL at `offset`, outermost first.

    The result is empty when the instruction at `offset` is not a call, or when
    the callable is not a chain such as `name`, `name.attr` or `name.a.b`.
    """
    instructions = _instructions(code)
    index = next((i for i, ins in enumerate(instructions) if ins.offset == offset), None)
    if index is None or instructions[index].opname not in _CALL_NAMES:
        return ()
    call = instructions[index]
    if call.positions is None or call.positions.col_offset is None:
        return ()

    start = (call.positions.lineno, call.positions.col_offset)
    producer = _widest_load_before(instructions, index, start, _end_of(call))
    steps: list[LoadStep] = []
    while producer is not None and producer.opname in _ATTRIBUTE_LOADS:
        steps.append((producer.opname, str(producer.argval)))
        producer = _attribute_base(instructions, producer, start)
    if producer is None or producer.opname not in _NAME_LOADS:
        return ()
    steps.append((producer.opname, str(producer.argval)))
    return tuple(reversed(steps))


@lru_cache(maxsize=4096)
def _instructions(code: types.CodeType) -> Sequence[dis.Instruction]:
    return tuple(dis.get_instructions(code))


def _end_of(instruction: dis.Instruction) -> tuple[int, int]:
    positions = instruction.positions
    if positions is None or positions.end_lineno is None or positions.end_col_offset is None:
        return (-1, -1)
    return (positions.end_lineno, positions.end_col_offset)


def _starts_at(instruction: dis.Instruction, start: tuple[int | None, int]) -> bool:
    positions = instruction.positions
    return positions is not None and (positions.lineno, positions.col_offset) == start


def _widest_load_before(
    instructions: Sequence[dis.Instruction],
    index: int,
    start: tuple[int | None, int],
    limit: tuple[int, int],
) -> dis.Instruction | None:
    """Return the load before `index` that spans the most source from `start`, short of `limit`."""
    best: dis.Instruction | None = None
    for instruction in instructions[:index]:
        if instruction.opname not in _NAME_LOADS and instruction.opname not in _ATTRIBUTE_LOADS:
            continue
        if not _starts_at(instruction, start) or _end_of(instruction) >= limit:
            continue
        if best is None or _end_of(instruction) >= _end_of(best):
            best = instruction
    return best


def _attribute_base(
    instructions: Sequence[dis.Instruction],
    attribute: dis.Instruction,
    start: tuple[int | None, int],
) -> dis.Instruction | None:
    """Return the load whose value `attribute` reads from, or None when it is not a load.

    In `base.name` the base ends right before the dot, so its end column is the
    attribute's end column minus the name and the dot.
    """
    end_line, end_column = _end_of(attribute)
    expected_end = (end_line, end_column - len(str(attribute.argval)) - 1)
    index = instructions.index(attribute)
    base = _widest_load_before(instructions, index, start, _end_of(attribute))
    if base is None or _end_of(base) != expected_end:
        return None
    return base


def _replay(frame: types.FrameType, steps: Sequence[LoadStep]) -> Any:
    """Evaluate `steps` on `frame` without running user code; raise LookupError when stuck."""
    opname, name = steps[0]
    value = _load_name(frame, opname, name)
    for _, attribute in steps[1:]:
        value = _load_attribute(value, attribute)
    return value


def _load_name(frame: types.FrameType, opname: str, name: str) -> Any:
    if opname == "LOAD_GLOBAL":
        scopes: tuple[Any, ...] = (frame.f_globals, frame.f_builtins)
    elif opname == "LOAD_NAME":
        scopes = (frame.f_locals, frame.f_globals, frame.f_builtins)
    else:
        scopes = (frame.f_locals,)
    for scope in scopes:
        if name in scope:
            return scope[name]
    raise LookupError(name)


def _load_attribute(value: Any, name: str) -> Any:
    """Look `name` up the way `getattr` would, but return descriptors instead of calling them."""
    if isinstance(value, types.ModuleType):
        namespace = vars(value)
        if name in namespace:
            return namespace[name]
        raise LookupError(name)
    try:
        found = inspect.getattr_static(value, name)
    except AttributeError as error:
        raise LookupError(name) from error
    if isinstance(found, property):
        raise LookupError(name)
    return found
