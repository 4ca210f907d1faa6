"""The machine and software a run happened on. Environment variables are never read into it."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from aitax import __version__
from aitax.model.run import Environment
from aitax.redact import redact_argv

logger = logging.getLogger(__name__)

REPORTED_PACKAGES = (
    "aitax", "pyinstrument", "line_profiler", "memray", "numpy", "pandas", "scikit-learn",
    "scipy", "lightgbm", "xgboost", "torch", "onnxruntime", "jinja2", "matplotlib",
)  # fmt: skip


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        logger.debug("no /proc/cpuinfo; using platform.processor()")
    return platform.processor() or platform.machine() or "unknown"


def package_versions(names: Sequence[str] = REPORTED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(folder: Path) -> str | None:
    """Return the commit checked out in `folder`'s repository, with `+dirty` for local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.debug("git commit lookup in %s failed: %s", folder, error)
        return None
    dirty = "+dirty" if status.returncode == 0 and status.stdout.strip() else ""
    return commit.stdout.strip() + dirty


def collect_environment(command: Sequence[str], target_folder: Path) -> Environment:
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        packages=package_versions(),
        command=redact_argv(command),
        git_commit=git_commit(target_folder),
        aitax_version=__version__,
    )
