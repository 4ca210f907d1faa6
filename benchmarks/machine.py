"""The machine, software and source tree that a benchmark ran on."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

REPORTED_PACKAGES = (
    "aitax", "numpy", "pandas", "scikit-learn", "pyinstrument", "line_profiler", "memray",
    "scalene", "py-spy", "prometheus_client", "opentelemetry-sdk",
)  # fmt: skip


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    logical_cores: int
    usable_cores: int
    memory_gib: float
    system: str
    python: str
    packages: dict[str, str]
    commit: str


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        logger.debug("no /proc/cpuinfo; using platform.processor()")
    return platform.processor() or platform.machine() or "unknown"


def memory_gib() -> float:
    """Total memory from /proc/meminfo in GiB, or NaN where that file does not exist."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        logger.debug("no /proc/meminfo")
    return float("nan")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(folder: Path) -> str:
    """Return the checked-out commit, with `+dirty` when the tree has local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("could not read the git commit of %s: %s", folder, error)
        return "unknown"
    return head + ("+dirty" if status.strip() else "")


def describe_machine(repo_root: Path) -> Machine:
    return Machine(
        cpu_model=cpu_model(),
        logical_cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
        memory_gib=memory_gib(),
        system=platform.platform(),
        python=sys.version.split()[0] + f" ({sys.implementation.name})",
        packages=package_versions(),
        commit=git_commit(repo_root),
    )
