"""Automatic stage classification of unmarked samples by the modules in their stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitax.analysis.classify import ModuleRule, classify
from aitax.analysis.frames import FrameInfo, ModuleResolver, parse_frame
from aitax.config import load_config
from aitax.errors import ConfigError

SITE = "/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


def user(function: str = "handle") -> FrameInfo:
    return FrameInfo(function, "/srv/app/service.py", 10, "service", True, False)


def lib(module: str, function: str) -> FrameInfo:
    file = f"{SITE}/{module.replace('.', '/')}.py"
    return FrameInfo(function, file, 1, module, False, False)


def builtin(function: str) -> FrameInfo:
    return FrameInfo(function, "<built-in>", 0, None, False, True)


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([user(), builtin("Cursor.execute")], "feature_fetch"),
        ([user(), lib("requests.api", "get"), lib("json.decoder", "decode")], "feature_fetch"),
        (
            [user(), lib("pandas.io.sql", "read_sql"), lib("pandas.core.frame", "__init__")],
            "feature_fetch",
        ),
        (
            [user(), lib("sklearn.ensemble._forest", "predict_proba"), lib("numpy.core", "dot")],
            "inference",
        ),
        ([user(), lib("torch.nn.modules.module", "_call_impl")], "inference"),
        ([user(), lib("logging", "info"), lib("json.encoder", "iterencode")], "logging"),
        ([user(), lib("pandas.core.frame", "iterrows")], "feature_compute"),
        ([user(), lib("pandas.core.apply", "apply"), user("row_ratio")], "feature_compute"),
        ([user(), lib("sklearn.ensemble._forest", "fit"), lib("numpy.core", "dot")], "other"),
        (
            [
                user(),
                FrameInfo("_find_and_load", "<frozen importlib._bootstrap>", 1, None, False, False),
            ],
            "other",
        ),
        ([user()], "other"),
        ([user(), lib("yaml.loader", "load")], "other"),
    ],
)
def test_default_rules(frames: list[FrameInfo], expected: str) -> None:
    assert classify(frames) == expected


def test_user_rule_takes_precedence() -> None:
    rule = ModuleRule("feature_fetch", ("acme.store",), frozenset({"get"}))
    frames = [user(), lib("acme.store", "get"), lib("pandas.core.frame", "__init__")]
    assert classify(frames, [rule]) == "feature_fetch"
    assert classify([user(), lib("acme.store", "put")], [rule]) == "other"


def test_default_rules_can_be_replaced() -> None:
    frames = [user(), lib("pandas.core.frame", "iterrows")]
    assert classify(frames, (), default_rules=()) == "other"


def test_parse_frame_resolves_module_and_user_code() -> None:
    resolver = ModuleResolver((f"{SITE}", STDLIB, "/srv/app"), ("/venv", "/usr"))
    frame = parse_frame(
        f"iterrows\x00{SITE}/pandas/core/frame.py\x001400\x01cDataFrame\x01l1410", resolver
    )
    assert frame.function == "DataFrame.iterrows"
    assert frame.module == "pandas.core.frame"
    assert frame.line == 1400
    assert not frame.user_code

    mine = parse_frame("handle\x00/srv/app/pkg/__init__.py\x005", resolver)
    assert mine.module == "pkg"
    assert mine.user_code

    c_function = parse_frame("Connection.execute\x00<built-in>\x000", resolver)
    assert c_function.builtin
    assert c_function.module is None


def test_config_rules_load(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.aitax]\nreplace_default_rules = true\ninstance_cost_per_hour = 0.5\n"
        '[[tool.aitax.rules]]\nstage = "inference"\nmodules = ["acme.model"]\n',
        encoding="utf-8",
    )
    (tmp_path / "sub").mkdir()
    config = load_config(tmp_path / "sub")
    assert config.user_rules == (ModuleRule("inference", ("acme.model",)),)
    assert config.default_rules == ()
    assert config.instance_cost_per_hour == 0.5


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[[tool.aitax.rules]]\nmodules = ["x"]\n', "has stage = None"),
        ('[[tool.aitax.rules]]\nstage = "inference"\n', "is missing the modules key"),
        ("[tool.aitax]\nreplace_default_rules = 1\n", "replace_default_rules = 1"),
        ('[tool.aitax]\ninstance_cost_per_hour = "cheap"\n', "instance_cost_per_hour = 'cheap'"),
        ("[tool.aitax\n", "cannot read"),
    ],
)
def test_invalid_config_raises(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)
