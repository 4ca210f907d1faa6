"""Child processes: the watch finds them, counts their CPU time once, and the report names them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from aitax.analysis.children import advice, child_process_note
from aitax.capture.children import ChildWatch
from aitax.capture.children_summary import (
    FORKED,
    FORKSERVER,
    FORKSERVER_WORKER,
    LOKY_WORKER,
    MAX_LISTED_PROCESSES,
    RESOURCE_TRACKER,
    SPAWN_WORKER,
    SUBPROCESS,
    ProcessKey,
    ProcessRecord,
    classify,
    command_label,
    estimate_cpu_s,
    summarize,
)
from aitax.model.io import load_run
from aitax.model.run import ChildProcess, ChildProcesses
from conftest import CommandResult, run_aitax

PYTHON = "/usr/bin/python3"
# Burns CPU until the process has used the given number of CPU seconds, whatever the machine's speed.
BURN = """
import time

def burn(seconds):
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return seconds
"""


def record(
    pid: int,
    parent: ProcessKey | None = None,
    *,
    cpu_s: float = 0.0,
    waited_s: float = 0.0,
    last_poll: int = 5,
    argv: list[str] | None = None,
    same_command_as_parent: bool = False,
    alive_at_end: bool = False,
) -> ProcessRecord:
    return ProcessRecord(
        pid=pid,
        start=float(pid),
        parent=parent,
        argv=argv if argv is not None else ["/usr/bin/true"],
        name="true",
        first_seen_s=0.0,
        last_seen_s=float(last_poll),
        first_poll=1,
        last_poll=last_poll,
        cpu_s=cpu_s,
        waited_children_cpu_s=waited_s,
        same_command_as_parent=same_command_as_parent,
        alive_at_end=alive_at_end,
    )


def by_key(*records: ProcessRecord) -> dict[ProcessKey, ProcessRecord]:
    return {item.key: item for item in records}


# ---- the CPU estimate on hand-built trees ----


def test_estimate_counts_reaped_children_once() -> None:
    # The pass reaped child 10 after poll 3; the kernel's 2.0 s for it beats the 1.5 s polled.
    # Child 20 runs to the end; it reaped grandchild 30 (0.2 s polled, 0.3 s by the kernel).
    reaped = record(10, cpu_s=1.5, last_poll=3)
    running = record(20, cpu_s=1.0, waited_s=0.3, last_poll=5)
    grandchild = record(30, running.key, cpu_s=0.2, last_poll=2)
    total = estimate_cpu_s(by_key(reaped, running, grandchild), root_waited_cpu_s=2.0, final_poll=5)
    assert total == pytest.approx(2.0 + 1.0 + 0.3)


def test_estimate_keeps_polled_time_above_kernel_total() -> None:
    # A child reaped between the kernel read and the last poll: polled 0.8 s, kernel 0.0 s.
    child = record(10, cpu_s=0.8, last_poll=4)
    assert estimate_cpu_s(by_key(child), root_waited_cpu_s=0.0, final_poll=5) == pytest.approx(0.8)


def test_estimate_adds_orphan_outliving_parent() -> None:
    # Child 10 ended after poll 2 and was reaped by the pass (kernel: 0.5 s, its own and
    # nothing of 11). Its child 11 was reparented to init and ran on until the end.
    parent = record(10, cpu_s=0.4, last_poll=2)
    orphan = record(11, parent.key, cpu_s=0.7, last_poll=5)
    total = estimate_cpu_s(by_key(parent, orphan), root_waited_cpu_s=0.5, final_poll=5)
    assert total == pytest.approx(0.5 + 0.7)


def test_estimate_counts_zombie_not_yet_reaped() -> None:
    zombie = record(10, cpu_s=0.6, last_poll=5)
    assert estimate_cpu_s(by_key(zombie), root_waited_cpu_s=0.0, final_poll=5) == pytest.approx(0.6)


# ---- kinds and labels, from command lines that CPython 3.11 and joblib 1.6 start ----


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([PYTHON, "-m", "joblib.externals.loky.backend.popen_loky_posix", "--pipe", "14"], LOKY_WORKER),
        (
            [PYTHON, "-B", "-c", "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=12, pipe_handle=33)", "--multiprocessing-fork"],
            SPAWN_WORKER,
        ),
        ([PYTHON, "-B", "-c", "from multiprocessing.forkserver import main; main(20, 21, ['__main__'])"], FORKSERVER),
        ([PYTHON, "-B", "-c", "from multiprocessing.resource_tracker import main;main(11)"], RESOURCE_TRACKER),
        ([PYTHON, "-B", "-c", "from joblib.externals.loky.backend.resource_tracker import main; main(3, False)"], RESOURCE_TRACKER),
        (["sort", "-k", "2"], SUBPROCESS),
        # A marker in a plain argument is not a python helper.
        (["grep", "-c", "from multiprocessing.spawn import spawn_main"], SUBPROCESS),
    ],
)  # fmt: skip
def test_classify_command_lines(argv: list[str], expected: str) -> None:
    assert classify(record(10, argv=argv), parent_kind=None) == expected


def test_classify_bare_fork_from_parent() -> None:
    fork = record(11, argv=[PYTHON, "-c", "x"], same_command_as_parent=True)
    assert classify(fork, parent_kind=FORKSERVER) == FORKSERVER_WORKER
    assert classify(fork, parent_kind=None) == FORKED


def test_command_label_redacts_and_shortens() -> None:
    item = record(10, argv=["/opt/tools/upload", "--api-key", "hunter2", "x" * 200])
    label = command_label(item, SUBPROCESS, parent_label=None)
    assert label.startswith("upload --api-key '<redacted>' xxx")
    assert "hunter2" not in label
    assert len(label) == 80
    assert label.endswith("…")


def test_summary_bounds_listed_processes() -> None:
    records = by_key(*(record(pid, cpu_s=pid / 100, argv=["sort"]) for pid in range(1, 26)))
    summary = summarize(
        records, waited_cpu_s=0.0, final_poll=5, interval_s=0.1, watch_cpu_s=0.0, error=None
    )
    assert summary["count"] == 25
    assert len(summary["processes"]) == MAX_LISTED_PROCESSES
    assert summary["processes"][0]["pid"] == 25
    assert summary["omitted_count"] == 5
    assert summary["omitted_cpu_s"] == pytest.approx(sum(range(1, 6)) / 100)
    assert summary["by_kind"] == {SUBPROCESS: 25}
    assert summary["cpu_s"] == pytest.approx(sum(range(1, 26)) / 100)
    json.dumps(summary, allow_nan=False)


def test_note_names_kinds_share_and_advice() -> None:
    children = ChildProcesses(
        pass_name="clean",
        cpu_s=3.2,
        share=0.61,
        count=3,
        alive_at_end=2,
        by_kind={LOKY_WORKER: 2, SUBPROCESS: 1},
        processes=[ChildProcess(7, SUBPROCESS, "sort", "sort -k 2", 0.1, 0.5, 0.9, False)],
        advice=advice({LOKY_WORKER: 2, SUBPROCESS: 1}),
    )
    note = child_process_note(children)
    assert note is not None
    assert note.startswith(
        "Child processes used 3.20 s of CPU (61% of all CPU time in the clean pass)"
    )
    assert ": 2 loky workers, 1 subprocess (sort)." in note
    assert "2 of them were still running when the target finished" in note
    assert "n_jobs=1" in note
    assert "profile each subprocess's program on its own" in note


def test_note_skips_tiny_unseen_children() -> None:
    children = ChildProcesses("clean", cpu_s=0.004, share=0.01, count=0, alive_at_end=0)
    assert child_process_note(children) is None


# ---- the watch itself, on real processes ----


@pytest.mark.parametrize("use_proc", [True, False], ids=["proc", "psutil"])
def test_watch_records_running_child(use_proc: bool) -> None:
    times = iter([100.0, 100.5, 102.0])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "watched"])
    try:
        # One poll in the thread when it starts, then the final poll in stop().
        watch = ChildWatch(interval_s=3600, clock=lambda: next(times), use_proc=use_proc)
        watch.start()
        summary = watch.stop()
    finally:
        child.kill()
        child.wait()

    entry = next(item for item in summary["processes"] if item["pid"] == child.pid)
    assert entry["kind"] == SUBPROCESS
    assert entry["command"].endswith("-c 'import time; time.sleep(30)' watched")
    assert entry["first_seen_s"] == 0.5
    assert entry["last_seen_s"] == 2.0
    assert entry["alive_at_end"] is True
    assert summary["polls"] == 2
    assert summary["error"] is None


# ---- the real `aitax run` ----


def run_children(folder: Path, source: str, *options: str) -> tuple[dict[str, Any], CommandResult]:
    """Run `aitax run --passes clean` on `source`; return run.json and the command's result."""
    (folder / "target.py").write_text(source, encoding="utf-8")
    result = run_aitax(
        "run", "--force", "--passes", "clean", *options, "-o", "rep", "target.py",
        cwd=folder, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((folder / "rep" / "run.json").read_text(encoding="utf-8"))
    return report, result


def children_note(report: dict[str, Any]) -> str:
    return next(note for note in report["notes"] if note.startswith("Child processes used"))


def test_joblib_loky_workers_reported(tmp_path: Path) -> None:
    source = (
        BURN
        + """
from joblib import Parallel, delayed

if __name__ == "__main__":
    print(sum(Parallel(n_jobs=2, backend="loky")(delayed(burn)(1.0) for _ in range(2))))
"""
    )
    report, result = run_children(tmp_path, source)
    children = report["child_processes"]

    # Each worker burned 1 s of CPU, and the kernel's totals count all of it.
    assert children["cpu_s"] >= 1.8
    assert children["by_kind"][LOKY_WORKER] == 2
    assert children["cpu_by_kind"][LOKY_WORKER] >= 1.0
    assert children["share"] > 0.5
    note = children_note(report)
    assert "2 loky workers" in note
    assert "n_jobs=1" in note
    assert "Child processes, not profiled" in result.stdout + result.stderr
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert 'id="children"' in html
    assert "popen_loky_posix" in html

    reloaded = load_run(tmp_path / "rep" / "run.json").child_processes
    assert isinstance(reloaded, ChildProcesses)
    assert reloaded.by_kind[LOKY_WORKER] == 2
    assert all(isinstance(process, ChildProcess) for process in reloaded.processes)


def test_forkserver_pool_workers_reported(tmp_path: Path) -> None:
    source = (
        BURN
        + """
import multiprocessing

if __name__ == "__main__":
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        print(sum(pool.map(burn, [0.6, 0.6])))
"""
    )
    report, _ = run_children(tmp_path, source, "-q")
    children = report["child_processes"]

    # The workers are the forkserver's children, grandchildren of the pass.
    assert children["by_kind"][FORKSERVER] == 1
    assert children["by_kind"][FORKSERVER_WORKER] == 2
    assert children["cpu_s"] >= 1.0
    assert "2 multiprocessing forkserver workers" in children_note(report)


def test_subprocess_run_reported_with_redacted_arguments(tmp_path: Path) -> None:
    source = """
import subprocess, sys

code = "import time\\nwhile time.process_time()<1:0"
subprocess.run([sys.executable, "-c", code, "--api-key", "hunter2"], check=True)
"""
    report, _ = run_children(tmp_path, source, "-q")
    children = report["child_processes"]

    assert children["cpu_s"] >= 0.9
    assert children["by_kind"] == {SUBPROCESS: 1}
    (entry,) = children["processes"]
    assert entry["alive_at_end"] is False
    assert entry["command"].endswith("<1:0' --api-key '<redacted>'")
    assert "hunter2" not in (tmp_path / "rep" / "run.json").read_text(encoding="utf-8")
    assert "1 subprocess (python" in children_note(report)


def test_child_left_running_reported_alive(tmp_path: Path) -> None:
    marker = f"aitax-test-left-running-{os.getpid()}"
    source = f"""
import subprocess, sys

code = "import time\\nwhile time.process_time() < 0.3: pass\\nprint('burned', flush=True)\\ntime.sleep(60)"
child = subprocess.Popen(
    [sys.executable, "-c", code, {marker!r}], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
)
child.stdout.readline()
print(child.pid)
"""
    try:
        report, result = run_children(tmp_path, source, "-q")
    finally:
        left = _kill_processes_with(marker)
    children = report["child_processes"]

    (entry,) = [item for item in children["processes"] if item["pid"] == int(result.stdout)]
    assert entry["alive_at_end"] is True
    assert entry["cpu_s"] >= 0.2
    assert children["alive_at_end"] == 1
    assert "1 of them was still running when the target finished" in children_note(report)
    assert left == 1


def test_unshut_executor_does_not_hang_pass(tmp_path: Path) -> None:
    # Under python, interpreter exit signals the idle worker threads to finish.
    source = """
from concurrent.futures import ThreadPoolExecutor

executor = ThreadPoolExecutor(2)
print(executor.submit(sum, [1, 2, 3]).result())
"""
    started = time.monotonic()
    report, result = run_children(tmp_path, source)
    assert report["exit_code"] == 0
    assert result.stdout.startswith("6\n")
    assert time.monotonic() - started < 30


def _kill_processes_with(marker: str) -> int:
    """Kill the processes whose command line contains `marker`; return how many there were."""
    killed = 0
    for process in psutil.process_iter(["cmdline"]):
        if marker in (process.info.get("cmdline") or []):
            try:
                process.send_signal(signal.SIGKILL)
                killed += 1
            except psutil.NoSuchProcess:
                continue
    return killed
