"""Rules that put unmarked CPU samples into stages by the modules in their stacks.

A sample is decided in this order:

1. Import machinery anywhere in the stack: `other`, because start-up is not a stage.
2. A model training call (`fit`, `train`) anywhere: `other`, because training is not serving.
3. A configured rule matching any frame, the outermost match first.
4. A model inference call (`predict`, `forward`, ...) anywhere: `inference`.
5. The library that the innermost user-code frame called, the first matching frame
   after it. If that frame calls nothing that matches, the library that called
   back into user code (pandas' `apply` calling a row function, say).
6. A blocking wait (a lock, select or epoll) that no rule claimed: `idle`.
7. Otherwise `other`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aitax.analysis.frames import FrameInfo
from aitax.markers import FEATURE_COMPUTE, FEATURE_FETCH, INFERENCE, LOGGING

OTHER = "other"
# Unmarked time spent waiting for work, such as an event loop in epoll or a
# thread blocked on a lock or queue. It is not work, so it is left out of the
# stage split and the hotspots.
IDLE = "idle"

_BLOCKING_BUILTINS = frozenset({
    "lock.acquire", "RLock.acquire", "select", "poll.poll", "epoll.poll", "kqueue.control",
    "devpoll.poll", "SimpleQueue.get", "Connection.poll", "sigwait", "sigtimedwait", "waitpid",
})  # fmt: skip

_MODEL_LIBRARIES = (
    "sklearn", "lightgbm", "xgboost", "catboost", "onnxruntime", "torch", "tensorflow",
    "keras", "transformers", "jax", "flax", "statsmodels", "prophet",
)  # fmt: skip
_INFERENCE_FUNCTIONS = frozenset({
    "predict", "predict_proba", "predict_log_proba", "decision_function", "score_samples",
    "forward", "_call_impl", "_wrapped_call_impl", "run", "generate", "inplace_predict",
})  # fmt: skip
_TRAINING_FUNCTIONS = frozenset({"fit", "partial_fit", "fit_transform", "train", "cv"})
_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


@dataclass(frozen=True)
class ModuleRule:
    """Put frames of these modules (and, if given, only these functions) in `stage`."""

    stage: str
    modules: tuple[str, ...]
    functions: frozenset[str] = field(default_factory=frozenset)
    builtins: frozenset[str] = field(default_factory=frozenset)

    def matches(self, frame: FrameInfo) -> bool:
        if frame.builtin:
            return frame.function in self.builtins
        if frame.module is None or not _in_modules(frame.module, self.modules):
            return False
        return not self.functions or _short_name(frame.function) in self.functions


DEFAULT_RULES: tuple[ModuleRule, ...] = (
    ModuleRule(
        FEATURE_FETCH,
        modules=(
            "sqlite3",
            "redis",
            "psycopg",
            "psycopg2",
            "pymysql",
            "MySQLdb",
            "mysql",
            "pymongo",
            "cassandra",
            "elasticsearch",
            "sqlalchemy",
            "requests",
            "urllib3",
            "httpx",
            "aiohttp",
            "http.client",
            "urllib.request",
            "socket",
            "ssl",
            "grpc",
            "boto3",
            "botocore",
            "s3fs",
            "feast",
            "pandas.io.sql",
            "pyarrow.flight",
        ),
        builtins=frozenset(
            {
                "Connection.execute",
                "Connection.executemany",
                "Connection.commit",
                "Cursor.execute",
                "Cursor.executemany",
                "Cursor.fetchone",
                "Cursor.fetchall",
                "Cursor.fetchmany",
                "socket.recv",
                "socket.recv_into",
                "socket.sendall",
            }
        ),
    ),
    ModuleRule(
        LOGGING,
        modules=(
            "logging",
            "json",
            "simplejson",
            "orjson",
            "ujson",
            "structlog",
            "loguru",
            "prometheus_client",
            "statsd",
            "datadog",
            "opentelemetry",
            "sentry_sdk",
        ),
    ),
    ModuleRule(
        FEATURE_COMPUTE,
        modules=("pandas", "numpy", "scipy", "polars", "pyarrow", "numexpr", "bottleneck"),
    ),
)


def _in_modules(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _short_name(function: str) -> str:
    return function.rsplit(".", 1)[-1]


def _is_import(frame: FrameInfo) -> bool:
    return frame.file in _IMPORT_FILES


def _is_model_call(frame: FrameInfo, functions: frozenset[str]) -> bool:
    return (
        frame.module is not None
        and _in_modules(frame.module, _MODEL_LIBRARIES)
        and _short_name(frame.function) in functions
    )


def is_model_inference_call(frame: FrameInfo) -> bool:
    """Return True for a model library's predict or forward call."""
    return _is_model_call(frame, _INFERENCE_FUNCTIONS)


def _first_match(frames: Iterable[FrameInfo], rules: Sequence[ModuleRule]) -> str | None:
    for frame in frames:
        for rule in rules:
            if rule.matches(frame):
                return rule.stage
    return None


def is_idle_wait(frames: Sequence[FrameInfo]) -> bool:
    """Return True when the sample's innermost call blocks waiting (a lock, select or epoll)."""
    return bool(frames) and frames[-1].builtin and frames[-1].function in _BLOCKING_BUILTINS


def classify(
    frames: Sequence[FrameInfo],
    user_rules: Sequence[ModuleRule] = (),
    default_rules: Sequence[ModuleRule] = DEFAULT_RULES,
) -> str:
    """Return the stage of one unmarked sample; `frames` run from the root to the leaf."""
    if any(_is_import(frame) for frame in frames):
        return OTHER
    if any(_is_model_call(frame, _TRAINING_FUNCTIONS) for frame in frames):
        return OTHER

    configured = _first_match(frames, user_rules)
    if configured is not None:
        return configured

    if any(_is_model_call(frame, _INFERENCE_FUNCTIONS) for frame in frames):
        return INFERENCE

    stage = _classify_by_boundary(frames, default_rules)
    if stage is not None:
        return stage
    return IDLE if is_idle_wait(frames) else OTHER


def _classify_by_boundary(frames: Sequence[FrameInfo], rules: Sequence[ModuleRule]) -> str | None:
    last_user = max((i for i, frame in enumerate(frames) if frame.user_code), default=None)
    if last_user is None:
        return _first_match(frames, rules)

    called = _first_match(frames[last_user + 1 :], rules)
    if called is not None:
        return called
    return _first_match(reversed(frames[:last_user]), rules)
