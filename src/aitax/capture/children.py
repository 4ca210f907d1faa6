"""A watch over the processes that the target starts, which no pass profiles.

A daemon thread polls the pass's process tree while the target runs. For each
descendant it keeps the CPU times last seen, its command line, and when it was
first and last seen. It never waits for a process, so the target reaps its
children as it would under python. The kernel's totals for reaped children
(`RUSAGE_CHILDREN`, and the `cutime` and `cstime` of every watched process) add
the children that ended between two polls; `children_summary` sums it all up.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import psutil

from aitax.capture.children_summary import ProcessKey, ProcessRecord, summarize
from aitax.capture.sampler import OWN_THREAD_PREFIX

logger = logging.getLogger(__name__)

# A process that lives for one poll interval is always seen, and so named and
# counted by kind. Shorter ones still count in the CPU total through the
# kernel's totals for reaped children. Timed with time.thread_time on a shared
# 2-core VM, a poll cost 0.1 ms with no children and 0.2 ms with 4 idle ones,
# and 0.5 ms with 4 (1 ms with 16) while a target thread ran Python code. So
# 100 ms keeps the watch near 0.5% of one core for a handful of workers.
POLL_INTERVAL_S: Final = 0.1
# The watch waits longer between polls when a poll costs more than this share
# of the time between polls. A tree of hundreds of processes then cannot slow
# the target, and neither can a target with hundreds of threads.
MAX_WATCH_CPU_SHARE: Final = 0.005
# The CPU pass's sampler leaves out threads with aitax's prefix.
THREAD_NAME: Final = OWN_THREAD_PREFIX + "child-watch"
# The key of the watch's record in a capture's `extra`.
CHILD_PROCESSES_KEY: Final = "child_processes"


@dataclass(frozen=True)
class ProcessSample:
    """The values that one poll reads of a process. `start` and the pid together identify it."""

    start: float
    name: str
    zombie: bool
    threads: int
    cpu_s: float
    waited_children_cpu_s: float


@dataclass
class ChildWatch:
    """Poll the process tree under `root_pid` from a daemon thread until `stop`."""

    root_pid: int = field(default_factory=os.getpid)
    interval_s: float = POLL_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    # On Linux the watch reads /proc itself: each thread's children from
    # /proc/PID/task/TID/children and the CPU times from /proc/PID/stat. psutil's
    # children(recursive=True) reads the parent of every process on the machine:
    # 7 ms per poll among 75 processes, against 0.2 ms this way with 4 children
    # (the same VM). psutil is used only where those files are missing.
    use_proc: bool | None = None
    records: dict[ProcessKey, ProcessRecord] = field(default_factory=dict)
    polls: int = 0
    watch_cpu_s: float = 0.0
    error: str | None = None
    _started_s: float = 0.0
    _root_argv: list[str] = field(default_factory=list)
    _seen_last_poll: dict[int, ProcessKey] = field(default_factory=dict)
    # Children by parent pid, from psutil, rebuilt at each poll where /proc is not used.
    _psutil_children: dict[int, list[int]] = field(default_factory=dict)
    _stop_event: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.use_proc is None:
            self.use_proc = os.path.exists(f"/proc/{self.root_pid}/task/{self.root_pid}/children")
        self._root_argv = self._argv_of(self.root_pid)
        self._started_s = self.clock()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Stop the thread, poll once more, and return the record for the capture's `extra`."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join()
        # Read before the last poll: a child reaped in between is then counted once,
        # from its polled times, and never both there and in the kernel's total.
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        if self.error is None:
            try:
                self.poll(final=True)
            except (OSError, ValueError, psutil.Error) as error:
                self._fail(error)
        return summarize(
            self.records,
            waited.ru_utime + waited.ru_stime,
            final_poll=self.polls,
            interval_s=self.interval_s,
            watch_cpu_s=self.watch_cpu_s,
            error=self.error,
        )

    def _run(self) -> None:
        while True:
            cpu_before = time.thread_time()
            try:
                self.poll()
            except (OSError, ValueError, psutil.Error) as error:
                self._fail(error)
                return
            cost = time.thread_time() - cpu_before
            self.watch_cpu_s += cost
            if self._stop_event.wait(max(self.interval_s, cost / MAX_WATCH_CPU_SHARE)):
                return

    def _fail(self, error: BaseException) -> None:
        # The target must run on, so the watch stops and the report names the error.
        self.error = f"{type(error).__name__}: {error}"
        logger.warning("stopped watching child processes: %s", self.error)

    def poll(self, final: bool = False) -> None:
        """Update the record of every process in the tree; at the `final` poll, note which live."""
        self.polls += 1
        now = self.clock() - self._started_s
        if not self.use_proc:
            self._psutil_children = _children_by_parent()

        seen: dict[int, ProcessKey] = {}
        self._visit(self.root_pid, 0, None, seen, now, final)
        # A process whose parent ended was reparented to init, so it left the tree.
        # It is followed from its own pid and keeps the parent it had when first seen.
        for pid, key in self._seen_last_poll.items():
            if pid in seen:
                continue
            sample = self._sample(pid)
            if sample is not None and (pid, sample.start) == key:
                self._record(key, sample, now, final)
                seen[pid] = key
                self._visit(pid, sample.threads, key, seen, now, final)
        self._seen_last_poll = seen

    def _visit(
        self,
        pid: int,
        threads: int,
        key: ProcessKey | None,
        seen: dict[int, ProcessKey],
        now: float,
        final: bool,
    ) -> None:
        """Record every process under `pid`, whose record key is `key`, parents first."""
        stack = [(child, key) for child in self._children_of(pid, threads)]
        while stack:
            child, parent = stack.pop()
            if child in seen or child == self.root_pid:
                continue
            sample = self._sample(child)
            if sample is None:
                continue
            child_key = (child, sample.start)
            self._record(child_key, sample, now, final, parent)
            seen[child] = child_key
            stack.extend(
                (grandchild, child_key) for grandchild in self._children_of(child, sample.threads)
            )

    def _record(
        self,
        key: ProcessKey,
        sample: ProcessSample,
        now: float,
        final: bool,
        parent: ProcessKey | None = None,
    ) -> None:
        """Update a process's record from `sample`; `parent` is used when it is new."""
        record = self.records.get(key)
        if record is None:
            argv = self._argv_of(key[0])
            record = ProcessRecord(
                pid=key[0],
                start=key[1],
                parent=parent,
                argv=argv,
                name=sample.name,
                first_seen_s=now,
                last_seen_s=now,
                first_poll=self.polls,
                last_poll=self.polls,
                same_command_as_parent=argv == self._parent_argv(parent),
            )
            self.records[key] = record
        elif record.same_command_as_parent:
            record.argv = self._argv_of(key[0])
            record.same_command_as_parent = record.argv == self._parent_argv(record.parent)
        record.cpu_s = sample.cpu_s
        record.waited_children_cpu_s = sample.waited_children_cpu_s
        record.last_seen_s = now
        record.last_poll = self.polls
        record.alive_at_end = final and not sample.zombie

    def _children_of(self, pid: int, threads: int) -> list[int]:
        if not self.use_proc:
            return self._psutil_children.get(pid, [])
        if pid == self.root_pid == os.getpid():
            return own_thread_children()
        return proc_children(pid, threads)

    def _sample(self, pid: int) -> ProcessSample | None:
        """Read a process's CPU times; None when it no longer exists."""
        return read_proc_stat(pid) if self.use_proc else _read_psutil(pid)

    def _argv_of(self, pid: int) -> list[str]:
        if self.use_proc:
            return read_proc_cmdline(pid)
        try:
            return list(psutil.Process(pid).cmdline())
        except psutil.Error:
            return []

    def _parent_argv(self, parent: ProcessKey | None) -> list[str]:
        if parent is None:
            return self._root_argv
        record = self.records.get(parent)
        return record.argv if record is not None else []


# os.open, os.read and os.close each release the GIL. A CPU-bound target thread
# must then hand it back, and on an idle 2-core VM each handoff cost the target
# about 0.3 ms: a poll of 4 children slowed a CPU-bound loop by 11%. So /proc is
# read through libc loaded with ctypes.PyDLL, whose calls keep the GIL, and a
# poll takes it once. Reads of procfs do not block on I/O.
_READ_SIZE: Final = 4096
_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_GONE_ERRNOS: Final = frozenset({errno.ENOENT, errno.ESRCH, errno.EACCES, errno.EPERM})


def _load_libc() -> ctypes.PyDLL | None:
    try:
        libc = ctypes.PyDLL(None, use_errno=True)
        libc.open.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.open.restype = ctypes.c_int
        libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        libc.read.restype = ctypes.c_ssize_t
        libc.close.argtypes = [ctypes.c_int]
        libc.close.restype = ctypes.c_int
    except (OSError, AttributeError):
        logger.debug("libc is not loadable with ctypes; /proc is read with os.read")
        return None
    return libc


_LIBC: Final = _load_libc()


def _read_proc_file(path: str, until_eof: bool = False) -> bytes | None:
    """Read a /proc file; None when the process is gone or hides it.

    A seq_file such as stat or children returns all it has in one read when the
    buffer is larger, so a short read ends those. `until_eof` reads on to the
    end of files that can return less, such as cmdline.
    """
    if _LIBC is None:
        return _read_with_os(path)
    descriptor = _LIBC.open(os.fsencode(path), os.O_RDONLY | os.O_CLOEXEC)
    if descriptor < 0:
        _raise_unless_gone(ctypes.get_errno(), path)
        return None
    try:
        buffer = ctypes.create_string_buffer(_READ_SIZE)
        chunks = []
        while (count := _LIBC.read(descriptor, buffer, _READ_SIZE)) > 0:
            chunks.append(ctypes.string_at(buffer, count))
            if count < _READ_SIZE and not until_eof:
                break
        if count < 0:
            _raise_unless_gone(ctypes.get_errno(), path)
            return None
        return b"".join(chunks)
    finally:
        _LIBC.close(descriptor)


def _raise_unless_gone(number: int, path: str) -> None:
    """Raise OSError for an error other than a process that ended or hides its files."""
    if number not in _GONE_ERRNOS:
        raise OSError(number, os.strerror(number), path)


def _read_with_os(path: str) -> bytes | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        chunks = []
        while chunk := os.read(descriptor, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    except (ProcessLookupError, PermissionError):
        return None
    finally:
        os.close(descriptor)


def proc_children(pid: int, threads: int) -> list[int]:
    """List the children of every thread of a process, from /proc (Linux 3.5 and later).

    A child is listed under the thread that started it. With `threads == 1`
    that is the main thread, whose id is the pid, so the task folder is not
    listed. Pass 0 when the thread count is not known.
    """
    if threads == 1:
        thread_ids = [pid]
    else:
        try:
            thread_ids = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return []
    return _children_of_threads(pid, thread_ids)


def _children_of_threads(pid: int, thread_ids: Iterable[int]) -> list[int]:
    children: list[int] = []
    for thread_id in thread_ids:
        listing = _read_proc_file(f"/proc/{pid}/task/{thread_id}/children")
        if listing:
            children.extend(int(child) for child in listing.split())
    return children


def own_thread_children() -> list[int]:
    """List the children of this process's Python threads, without listing its task folder.

    os.listdir would release the GIL once per thread. A child started by a
    native thread that Python does not know is missed, but it still counts in
    RUSAGE_CHILDREN once reaped.
    """
    thread_ids = {os.getpid()}
    for thread in threading.enumerate():
        if thread.native_id is not None:
            thread_ids.add(thread.native_id)
    return _children_of_threads(os.getpid(), thread_ids)


def read_proc_stat(pid: int) -> ProcessSample | None:
    """Read a process's state and CPU times from /proc/PID/stat, as proc(5) lays it out.

    `start` is the start time in seconds after boot.
    """
    data = _read_proc_file(f"/proc/{pid}/stat")
    if not data:
        return None
    # The command name sits in parentheses and may hold spaces and parentheses itself.
    name_end = data.rfind(b")")
    name = data[data.find(b"(") + 1 : name_end].decode("utf-8", "replace")
    fields = data[name_end + 2 :].split()
    # proc(5) fields 3 (state), 14 to 17 (utime, stime, cutime, cstime, in clock
    # ticks), 20 (num_threads) and 22 (starttime, in ticks after boot).
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcessSample(
        start=int(fields[19]) / _CLOCK_TICKS,
        name=name,
        zombie=fields[0] == b"Z",
        threads=int(fields[17]),
        cpu_s=(utime + stime) / _CLOCK_TICKS,
        waited_children_cpu_s=(cutime + cstime) / _CLOCK_TICKS,
    )


def read_proc_cmdline(pid: int) -> list[str]:
    """Read a process's arguments from /proc/PID/cmdline; empty for a zombie or a kernel thread."""
    data = _read_proc_file(f"/proc/{pid}/cmdline", until_eof=True)
    if not data:
        return []
    # NUL-terminated arguments, unless the process rewrote its title (setproctitle)
    # as one line of spaces. Decoded as Python decodes sys.argv.
    separator = b"\0" if data.endswith(b"\0") else b" "
    return [os.fsdecode(argument) for argument in data.removesuffix(separator).split(separator)]


def _children_by_parent() -> dict[int, list[int]]:
    """Map every parent pid on the machine to its children's pids, through psutil."""
    children: dict[int, list[int]] = {}
    for process in psutil.process_iter(["ppid"]):
        parent = process.info.get("ppid")
        if isinstance(parent, int):
            children.setdefault(parent, []).append(process.pid)
    return children


def _read_psutil(pid: int) -> ProcessSample | None:
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            return ProcessSample(
                start=process.create_time(),
                name=process.name(),
                zombie=process.status() == psutil.STATUS_ZOMBIE,
                threads=process.num_threads(),
                cpu_s=times.user + times.system,
                waited_children_cpu_s=times.children_user + times.children_system,
            )
    except psutil.Error:
        return None
