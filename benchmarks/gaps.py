"""Explanations of the missed benchmark targets: the limit behind each, and the next step.

The texts describe how aitax works, not one run's numbers, so they hold for any
run that misses the target. The page prints them only for missed targets.
"""

from __future__ import annotations

CPU_PASS = (
    "The CPU pass samples every thread from a background thread, which must take "
    "the GIL for each sample. The pass shortens the interpreter's switch interval "
    "to 0.1 ms so that samples land close to when they are due, and each hand-over "
    "of the GIL costs the target a few microseconds, more on a loaded machine where "
    "the sampling thread waits for a free core. An out-of-process sampler (the "
    "py-spy row) needs no GIL. Next: lower the sampling rate while the target runs "
    "Python code, or read the stacks from outside the process where ptrace is allowed."
)
FULL_RUN = (
    "The four passes run one after another, each in its own process and each over "
    "the whole target, so the passes alone cost at least four bare runs, and the "
    "line and memory passes about twice a bare run each. The analysis and the report "
    "come on top. Next: run the line and memory passes on a slice of the requests, "
    "since the clean pass has already counted them, and run passes side by side "
    "where the machine has spare cores."
)
MARKED_SHARES = (
    "With markers both sides time the stages with `time.perf_counter`, but in "
    "separate processes run one after another, so the difference is mostly the "
    "variation between runs on a shared machine. The watchers that every aitax pass "
    "installs (SQL statement tracing, counting of logging calls, gc callbacks) also "
    "lengthen the fetch and logging stages a little. Next: install the watchers in "
    "the CPU pass only, and keep the clean pass free of them."
)
UNMARKED_SHARES = (
    "Without markers the stage shares come from CPU samples classified by module "
    "rules. The sampler waits for the GIL, so Python-heavy code is sampled every "
    "few milliseconds, short stages carry sampling error, and time in code that no "
    "rule claims counts as other. Next: add rules for the libraries that the "
    "unclaimed samples fall in."
)
MARKER_OFF = (
    "Without a recorder a stage costs the lookup of the shared `Stage` object and "
    "the two Python calls of the `with` statement. Next: a context manager written "
    "in C for the path without a recorder."
)
MARKER_RECORDER = (
    "With a recorder installed, each enter/exit pair reads the wall clock twice and "
    "the thread's CPU clock twice, and `time.thread_time_ns` is a system call on "
    "many virtual machines, this one included. This recorder serves the profiling "
    "passes. Next: read the CPU clock only where a stage's CPU time is reported."
)
