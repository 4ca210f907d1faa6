"""The process that runs one pass: it runs the target as `python` would and saves a capture.

The runner starts `python -m aitax.capture.child SPEC` once per pass. The spec
is a JSON file naming the pass, the target and the capture folder.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import runpy
import signal
import sys
import threading
import time
import traceback
import types
from pathlib import Path
from typing import Any, TextIO

from aitax import markers
from aitax.capture.capture_file import Capture, capture_to_json, write_json_atomic
from aitax.capture.children import CHILD_PROCESSES_KEY, ChildWatch
from aitax.capture.passes import BasePass, PassHooks

logger = logging.getLogger(__name__)

CAPTURE_NAME = "{pass_name}.json"
# The memory pass leaves the child watch out: memray would record the watch's
# own allocations among the target's.
CHILD_WATCH_PASSES = ("clean", "cpu", "line")

_OWN_FILES = (__file__, runpy.__file__)


def build_hooks(spec: dict[str, Any], out_dir: Path) -> PassHooks:
    """Return the profiler hooks of the pass that `spec` names."""
    pass_name = spec["pass"]
    if pass_name == "clean":
        return BasePass()
    if pass_name == "cpu":
        from aitax.capture.cpu import CpuPass

        return CpuPass(interval=float(spec.get("interval", 0.001)))
    if pass_name == "line":
        from aitax.capture.lines import LinePass

        return LinePass(spec.get("line_targets", []), spec.get("line_profile", []))
    if pass_name == "memory":
        from aitax.capture.memory import MemoryPass

        return MemoryPass(out_dir, native=bool(spec.get("native", False)))
    raise ValueError(f"pass {pass_name!r} is unknown")


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out_dir = Path(spec["out_dir"])
    hooks = build_hooks(spec, out_dir)

    recorder = markers.Recorder()
    markers.install(recorder)
    _prepare_sys(spec)
    # NOTE: the watch is a thread, so on Python 3.12 and later a target that calls
    # os.fork() itself gets the DeprecationWarning about forking a multi-threaded
    # process, which python alone would not print.
    child_watch = ChildWatch() if spec["pass"] in CHILD_WATCH_PASSES else None
    if child_watch is not None:
        child_watch.start()

    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    signal.signal(signal.SIGTERM, _raise_terminated)
    hooks.start(recorder)
    exit_code, tb_text = _run_target(spec, hooks)
    # From here on the capture is being written: a second interrupt must not cut it short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    children_record = child_watch.stop() if child_watch is not None else None
    try:
        extra = hooks.stop(out_dir)
    finally:
        markers.install(None)
    wall_s = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra["children_cpu_s"] = children.ru_utime + children.ru_stime
    if children_record is not None:
        extra[CHILD_PROCESSES_KEY] = children_record

    capture = Capture(
        pass_name=spec["pass"],
        exit_code=exit_code,
        wall_s=wall_s,
        cpu_s=cpu_s,
        peak_rss_bytes=peak_rss_bytes(),
        traceback=tb_text,
        stages=recorder.stages,
        requests=recorder.requests,
        extra=extra,
    )
    write_json_atomic(
        out_dir / CAPTURE_NAME.format(pass_name=spec["pass"]), capture_to_json(capture)
    )
    return exit_code


class TerminatedError(BaseException):
    """Raised in the target when the pass receives SIGTERM, so that it unwinds like on Ctrl-C."""


_PASS_PID = os.getpid()


def _raise_terminated(signum: int, frame: types.FrameType | None) -> None:
    if os.getpid() != _PASS_PID:
        # A process that the target forked inherited this handler: die as python would.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise TerminatedError(f"terminated by signal {signal.Signals(signum).name}")


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size.

    Linux carries ru_maxrss across exec, so right after aitax starts a pass it
    would report the parent's peak. VmHWM in /proc/self/status belongs to this
    program alone, so it is preferred where it exists.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        logger.debug("no VmHWM in /proc/self/status; using ru_maxrss")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _forget_shadowed_modules(folder: str, startup_modules: set[str]) -> None:
    """Unload modules that aitax imported but that a file in `folder` would shadow under python.

    A project's own json.py or random.py wins over the standard library under
    `python script.py`, because its folder comes first on sys.path and python
    itself has not imported those modules yet.
    """
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in startup_modules or top == "__main__":
            continue
        if os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isfile(
            os.path.join(folder, top, "__init__.py")
        ):
            logger.debug("unloading %s, which %s shadows", name, folder)
            del sys.modules[name]


def _prepare_sys(spec: dict[str, Any]) -> None:
    """Set argv and path[0] as `python SCRIPT` or `python -m MODULE` sets them."""
    target = spec["target"]
    if target["kind"] == "script":
        script = target["name"]
        sys.argv = [script, *target["args"]]
        folder = os.path.dirname(os.path.abspath(script))
    else:
        # runpy.run_module(alter_sys=True) replaces argv[0] with the module's path.
        sys.argv = ["-m", *target["args"]]
        folder = os.getcwd()
    # The pass runs with python -P, which leaves sys.path[0] out, so it is added here.
    sys.path.insert(0, folder)
    _forget_shadowed_modules(sys.path[0], set(spec.get("startup_modules", [])))


def _run_target(spec: dict[str, Any], hooks: PassHooks) -> tuple[int, str | None]:
    """Run the target as __main__, then wait for its threads as the interpreter would.

    Return the exit status and, if the target raised, its traceback.
    """
    result = _run_main(spec, hooks)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN and result[0] in (130, 143):
        # Interrupted: write the capture first. The interpreter still waits for
        # the target's threads when the pass exits, as python would.
        return result
    try:
        _join_threads()
    except (KeyboardInterrupt, TerminatedError):
        logger.warning("stopped waiting for the target's threads after an interrupt")
    return result


def _run_main(spec: dict[str, Any], hooks: PassHooks) -> tuple[int, str | None]:
    target = spec["target"]
    try:
        if target["kind"] == "script":
            _run_script(target["name"], hooks)
        else:
            runpy.run_module(target["name"], run_name="__main__", alter_sys=True)
    except SystemExit as exit_request:
        return _exit_status(exit_request), None
    except TerminatedError as error:
        _ignore_interrupts()
        return 143, _format_target_traceback(error)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            _ignore_interrupts()
        text = _format_target_traceback(error)
        if _is_open(sys.stderr):
            sys.stderr.write(text)
            sys.stderr.flush()
        return (130 if isinstance(error, KeyboardInterrupt) else 1), text
    return 0, None


def _ignore_interrupts() -> None:
    """Ignore further SIGINT and SIGTERM once the target has unwound from one.

    Ctrl-C in a terminal reaches the pass twice: from the terminal, and forwarded
    by aitax. The second must not cut short the capture of the first.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _join_threads() -> None:
    """Wait for the target's non-daemon threads, as the interpreter does before it exits.

    Like `threading._shutdown` in CPython 3.11 to 3.13, it first calls the
    functions registered with `threading._register_atexit`. They tell the idle
    worker threads of executors that were never shut down (concurrent.futures,
    joblib's loky) to finish, and without them those threads would be waited for
    forever.
    """
    _call_threading_atexits()
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon and thread.is_alive():
            thread.join()


def _call_threading_atexits() -> None:
    registered = getattr(threading, "_threading_atexits", None)
    if not isinstance(registered, list):
        logger.debug("threading has no _threading_atexits; executors' threads may keep the pass up")
        return
    # Taken out of the list, so that the interpreter does not call them again at exit.
    calls = list(reversed(registered))
    registered.clear()
    for call in calls:
        try:
            call()
        except Exception:
            # The interpreter prints such an error and goes on shutting down, and so does the pass.
            logger.warning(
                "a function registered with threading._register_atexit failed", exc_info=True
            )


def _run_script(script: str, hooks: PassHooks) -> None:
    path = os.path.abspath(script)
    if os.path.isdir(path) or (not path.endswith((".py", ".pyw")) and _is_zip(path)):
        runpy.run_path(path, run_name="__main__")
        return

    # A real module object named __main__, so that objects defined in the script
    # pickle as they do under python.
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = __builtins__
    module.__cached__ = None  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    with open(path, "rb") as handle:
        code = hooks.compile_script(handle.read(), path)
    exec(code, module.__dict__)


def _is_zip(path: str) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def _exit_status(exit_request: SystemExit) -> int:
    code = exit_request.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    if _is_open(sys.stderr):
        sys.stderr.write(f"{code}\n")
    return 1


def _format_target_traceback(error: BaseException) -> str:
    """Format the traceback as python would print it, without this module's frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def _is_open(stream: TextIO | None) -> bool:
    """Return False when the target closed `stream` or set it to None."""
    return stream is not None and not stream.closed


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # Like the interpreter at exit, skip a standard stream that the target closed.
    for stream in (sys.stdout, sys.stderr):
        if _is_open(stream):
            stream.flush()
    sys.exit(status)
