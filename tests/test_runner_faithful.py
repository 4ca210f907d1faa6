"""`aitax run` behaves like python whatever the target does, and keeps what it measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import run_aitax


def run_json(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / "run.json").read_text(encoding="utf-8"))


def test_os_exit_status_and_missing_capture_explained(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("hard_exit.py", "import os\nprint('bye', flush=True)\nos._exit(5)\n")
    result = run_aitax("run", "--passes", "clean,cpu", "-o", "rep", "hard_exit.py", cwd=tmp_path)
    assert result.returncode == 5
    report = run_json(tmp_path / "rep")
    passes = {p["name"]: p for p in report["passes"]}
    assert passes["clean"]["status"] == "failed"
    assert "os._exit" in passes["clean"]["error"]
    assert passes["clean"]["exit_code"] == 5


def test_uncaught_exception_gives_status_one(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("boom.py", "raise KeyError('missing feature')\n")
    result = run_aitax("run", "--passes", "clean", "-o", "rep", "boom.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "KeyError: 'missing feature'" in result.stderr


def test_spawned_processes_pickle_script_functions(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "pool.py",
        """
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        class Row:
            def __init__(self, value):
                self.value = value

        def square(row):
            return row.value * row.value

        if __name__ == "__main__":
            context = mp.get_context("spawn")
            with context.Pool(2) as pool:
                print("pool", sum(pool.map(square, [Row(i) for i in range(10)])))
            with ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver")) as executor:
                print("executor", sum(executor.map(square, [Row(i) for i in range(10)])))
        """,
    )
    result = run_aitax("run", "--passes", "clean,cpu", "-o", "rep", "pool.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pool 285" in result.stdout
    assert "executor 285" in result.stdout
    notes = " ".join(run_json(tmp_path / "rep")["notes"])
    assert "Child processes used" in notes


def test_folder_with_main_runs(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("app/__main__.py", "import sys\nprint('folder app', sys.argv[1:])\n")
    result = run_aitax("run", "--passes", "clean", "-o", "rep", "app", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "folder app ['x']" in result.stdout


def test_zipapp_runs(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "app.pyz", "w") as archive:
        archive.writestr("__main__.py", "print('zip app')\n")
    result = run_aitax("run", "--passes", "clean", "-o", "rep", "app.pyz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "zip app" in result.stdout


def test_target_profiler_leaves_sampling_working(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "own_profiler.py",
        """
        import cProfile
        import sys

        def work_before():
            total = 0
            for i in range(2_000_000):
                total += i * i
            return total

        def work_under_own_profiler():
            total = 0
            for i in range(2_000_000):
                total += i * i
            return total

        work_before()
        sys.setprofile(lambda frame, event, arg: None)
        work_under_own_profiler()
        sys.setprofile(None)
        profile = cProfile.Profile()
        profile.runcall(work_under_own_profiler)
        """,
    )
    result = run_aitax("run", "--passes", "clean,cpu", "-o", "rep", "own_profiler.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    seconds = {h["function"]: h["self_s"] for h in report["hotspots"]}
    assert seconds.get("work_before", 0) > 0.01
    assert seconds.get("work_under_own_profiler", 0) > 0.01
    assert not any("replaced" in note for note in report["notes"])


def test_threads_are_sampled_with_their_stage(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "threads.py",
        """
        import threading
        import aitax

        def worker_score():
            return sum(i * i for i in range(300_000))

        def worker():
            for _ in range(10):
                with aitax.stage("inference"):
                    worker_score()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        """,
    )
    result = run_aitax("run", "--passes", "clean,cpu", "-o", "rep", "threads.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    hotspot_functions = {h["function"]: h for h in report["hotspots"]}
    assert "worker_score" in hotspot_functions or "<genexpr>" in hotspot_functions
    inference = [h for h in report["hotspots"] if h["stage"] == "inference"]
    assert inference, "samples from worker threads carry their stage"
    assert any("sampled 3 threads" in note for note in report["notes"])
    assert all(h["function"] != "lock.acquire" for h in report["hotspots"])


def test_asyncio_await_time_counts_for_task_stage(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "service.py",
        """
        import asyncio
        import aitax

        async def fetch(i):
            with aitax.stage("feature_fetch"):
                await asyncio.sleep(0.05)

        async def main():
            for _ in range(4):
                await asyncio.gather(*(fetch(i) for i in range(5)))

        asyncio.run(main())
        """,
    )
    result = run_aitax("run", "--passes", "clean,cpu", "-o", "rep", "service.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    fetch = next(s for s in report["stages"] if s["name"] == "feature_fetch")
    assert fetch["count"] == 20
    assert fetch["p50_ms"] >= 50
    # Five tasks interleave on one thread, so no span's CPU time is its own.
    assert fetch["cpu_s"] is None
    assert any("concurrent tasks on one thread" in note for note in report["notes"])
    assert all(h["function"] not in ("epoll.poll", "select") for h in report["hotspots"])


def start_aitax(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aitax", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


LONG_SERVICE = """
import time
import aitax
print("serving", flush=True)
for _ in range(100_000):
    with aitax.request():
        with aitax.stage("inference"):
            time.sleep(0.005)
"""


@pytest.mark.parametrize(("sent", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_leaves_partial_report(tmp_path: Path, sent: signal.Signals, expected: int) -> None:
    (tmp_path / "long.py").write_text(LONG_SERVICE, encoding="utf-8")
    process = start_aitax(["run", "-o", "rep", "long.py"], tmp_path)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "serving"
    time.sleep(1.0)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == expected, stderr

    report = run_json(tmp_path / "rep")
    assert report["partial"] is True
    assert report["requests"]["count"] > 10
    passes = {p["name"]: p["status"] for p in report["passes"]}
    assert passes["clean"] == "ok"
    assert passes["memory"] == "skipped"
    assert (tmp_path / "rep" / "report.html").is_file()


def test_timeout_leaves_partial_report(tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text(LONG_SERVICE, encoding="utf-8")
    result = run_aitax("run", "--timeout", "2", "-o", "rep", "long.py", cwd=tmp_path)
    assert result.returncode == 143
    report = run_json(tmp_path / "rep")
    assert report["partial"] is True
    assert "timeout" in report["stop_reason"]
    assert report["requests"]["count"] > 10


def test_deep_recursion_and_odd_code(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "odd.py",
        """
        import sys
        sys.setrecursionlimit(20_000)

        def even(n):
            return True if n == 0 else odd(n - 1)

        def odd(n):
            return False if n == 0 else even(n - 1)

        def deep(n):
            return 0 if n == 0 else 1 + deep(n - 1)

        for _ in range(30):
            deep(5_000)
            even(4_000)
            exec("total = sum(x * x for x in range(20_000))")
            eval("[(lambda v: v + 1)(i) for i in range(5_000)]")
        """,
    )
    result = run_aitax("run", "-o", "rep", "odd.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    functions = {h["function"] for h in report["hotspots"]}
    assert functions & {"deep", "even", "odd", "<genexpr>", "<listcomp>", "<lambda>"}
    assert (tmp_path / "rep" / "report.html").stat().st_size < 2_000_000


def test_many_functions_keep_outputs_bounded(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    functions = "\n".join(
        f"def f{i}():\n    return sum(range({i % 50 + 10}))\n" for i in range(20_000)
    )
    calls = "for _ in range(3):\n" + "".join(f"    f{i}()\n" for i in range(20_000))
    (tmp_path / "many.py").write_text(functions + calls, encoding="utf-8")
    result = run_aitax("run", "--passes", "clean,cpu,line", "-o", "rep", "many.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    assert len(report["hotspots"]) <= 50
    assert len(report["lines"]) <= 10
    assert (tmp_path / "rep" / "run.json").stat().st_size < 2_000_000
    assert (tmp_path / "rep" / "report.html").stat().st_size < 2_000_000


def test_stdin_from_pipe_in_every_pass(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("count.py", "import sys\nprint(len(sys.stdin.read().split()))\n")
    result = run_aitax(
        "run", "--passes", "clean,cpu", "-o", "rep", "count.py", cwd=tmp_path, stdin="a b c d\n"
    )
    assert result.stdout.strip().splitlines()[0] == "4"
    assert (tmp_path / "rep" / "captures" / "cpu.log").read_text().strip() == "4"


def test_module_spec_and_relative_import(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("pkg/__init__.py", "")
    write_script("pkg/__main__.py", "from . import tool\nprint(__spec__.name, tool.NAME)\n")
    write_script("pkg/tool.py", "NAME = 'tool'\n")
    result = run_aitax("run", "--passes", "clean", "-o", "rep", "-m", "pkg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pkg.__main__ tool" in result.stdout


def test_report_folder_is_not_overwritten_on_crash(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("crash.py", "raise SystemExit('fatal: bad config')\n")
    result = run_aitax("run", "--passes", "clean", "-o", "rep", "crash.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "fatal: bad config" in result.stderr
    again = run_aitax("run", "--passes", "clean", "-o", "rep", "crash.py", cwd=tmp_path)
    assert again.returncode == 4
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path / "rep"))


ALLOCATING_SERVICE = """
import aitax
for _ in range(300):
    with aitax.request():
        with aitax.stage("feature_compute"):
            data = [bytearray(2000) for _ in range(50)]
"""


def test_signal_after_last_pass_keeps_report(tmp_path: Path) -> None:
    (tmp_path / "svc.py").write_text(ALLOCATING_SERVICE, encoding="utf-8")
    process = start_aitax(["run", "--passes", "clean,cpu,memory", "-o", "rep", "svc.py"], tmp_path)
    assert process.stderr is not None
    for line in process.stderr:
        if "memory pass" in line and "done" in line:
            break
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    report = run_json(tmp_path / "rep")
    assert report["requests"]["count"] == 300
    assert (tmp_path / "rep" / "report.html").is_file()
