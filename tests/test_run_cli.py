"""`aitax run` on real target processes: faithful execution, outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_aitax


def load_run_json(report: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((report / "run.json").read_text(encoding="utf-8"))


def test_exit_status_is_passed_through(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("exits.py", "import sys\nsys.exit(7)\n")
    result = run_aitax("run", "-o", "rep", "exits.py", cwd=tmp_path)
    assert result.returncode == 7
    assert load_run_json(tmp_path / "rep")["exit_code"] == 7


def test_argv_main_and_path_match_python(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "sub/show.py",
        """
        import json, os, sys
        print(json.dumps({"argv": sys.argv, "name": __name__, "path0": sys.path[0],
                          "file": __file__, "cwd": os.getcwd()}))
        """,
    )
    result = run_aitax(
        "run", "--passes", "clean", "-o", "rep", "sub/show.py", "--flag", "x y", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[0])
    assert seen["argv"] == ["sub/show.py", "--flag", "x y"]
    assert seen["name"] == "__main__"
    assert seen["path0"] == str(tmp_path / "sub")
    assert seen["file"] == str(tmp_path / "sub" / "show.py")
    assert seen["cwd"] == str(tmp_path)


def test_target_output_appears_once(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("hello.py", "print('hello from the target')\n")
    result = run_aitax("run", "-o", "rep", "hello.py", cwd=tmp_path)
    assert result.stdout.count("hello from the target") == 1
    assert "hello from the target" in (tmp_path / "rep" / "captures" / "cpu.log").read_text()


def test_module_target_with_relative_import(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("pkg/__init__.py", "")
    write_script("pkg/helpers.py", "VALUE = 41\n")
    write_script(
        "pkg/main.py",
        "import sys\nfrom .helpers import VALUE\nprint(VALUE + 1, __name__, sys.argv[1:])\n",
    )
    result = run_aitax("run", "--passes", "clean", "-o", "rep", "-m", "pkg.main", "a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "42 __main__ ['a']" in result.stdout


def test_crashing_target_gets_report_and_traceback(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "crash.py",
        """
        import aitax
        with aitax.request():
            with aitax.stage("inference"):
                pass
        def explode():
            raise ValueError("model file is corrupt")
        explode()
        """,
    )
    result = run_aitax("run", "-o", "rep", "crash.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "ValueError: model file is corrupt" in result.stderr
    assert "aitax/capture" not in result.stderr
    data = load_run_json(tmp_path / "rep")
    assert data["exit_code"] == 1
    assert "model file is corrupt" in data["traceback"]
    assert data["requests"]["count"] == 1
    assert (tmp_path / "rep" / "report.html").exists()


def test_standard_input_reaches_every_pass(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("echo.py", "import sys\nprint('got', sys.stdin.read().strip())\n")
    result = run_aitax("run", "-o", "rep", "echo.py", cwd=tmp_path, stdin="rows 1 2 3\n")
    assert "got rows 1 2 3" in result.stdout
    assert "got rows 1 2 3" in (tmp_path / "rep" / "captures" / "cpu.log").read_text()


def test_outputs_are_written(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "pipe.py",
        """
        import aitax, json
        def compute():
            return sum(i * i for i in range(20000))
        for i in range(30):
            with aitax.request():
                with aitax.stage("feature_compute"):
                    compute()
                with aitax.stage("logging"):
                    json.dumps(list(range(500)))
        """,
    )
    result = run_aitax("run", "-o", "rep", "pipe.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = tmp_path / "rep"
    for name in (
        "run.json",
        "report.html",
        "cpu.prof",
        "cpu-pyinstrument.html",
        "captures/cpu.pyisession",
    ):
        assert (report / name).is_file(), name
    data = load_run_json(report)
    assert data["schema_version"] == 1
    assert data["requests"]["count"] == 30
    assert {s["name"] for s in data["stages"] if s["source"] == "marked"} == {
        "feature_compute",
        "logging",
    }
    for key in ("p50_ms", "p95_ms", "p99_ms", "throughput_rps"):
        assert data["requests"][key] > 0
    assert all(p["status"] == "ok" for p in data["passes"])
    assert "Wrote rep/report.html" in result.stderr


def test_json_flag_prints_run_json(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("quiet.py", "x = 1\n")
    result = run_aitax("run", "--json", "-q", "-o", "rep", "quiet.py", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout)["target"] == "quiet.py"
    assert result.stderr == ""


def test_existing_report_needs_force(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    assert run_aitax("run", "--passes", "clean", "-o", "rep", "ok.py", cwd=tmp_path).returncode == 0
    (tmp_path / "rep" / "report.html").write_text("old")

    result = run_aitax("run", "--passes", "clean", "-o", "rep", "ok.py", cwd=tmp_path)
    assert result.returncode == 4
    assert result.stderr.startswith("aitax: error: report folder")
    assert "--force" in result.stderr
    assert (tmp_path / "rep" / "report.html").read_text() == "old"

    forced = run_aitax("run", "--passes", "clean", "--force", "-o", "rep", "ok.py", cwd=tmp_path)
    assert forced.returncode == 0
    assert (tmp_path / "rep" / "report.html").read_text() != "old"


def test_force_never_deletes_other_folders(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.csv").write_text("precious")

    for folder, status in (("data", 4), (".", 4), (str(tmp_path), 4), ("", 2)):
        result = run_aitax("run", "--force", "-o", folder, "ok.py", cwd=tmp_path)
        assert result.returncode == status, (folder, result.stderr)
        assert "Traceback" not in result.stderr
    assert (tmp_path / "data" / "keep.csv").read_text() == "precious"
    assert (tmp_path / "ok.py").exists()


def test_missing_script_is_one_line_error(tmp_path: Path) -> None:
    result = run_aitax("run", "nope.py", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert "script 'nope.py' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_syntax_error_is_one_line_error(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("broken.py", "def f(:\n    pass\n")
    result = run_aitax("run", "broken.py", cwd=tmp_path)
    assert result.returncode == 3
    assert "syntax error in 'broken.py' at line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x00\x01\x02\xff" * 10)
    result = run_aitax("run", "model.bin", cwd=tmp_path)
    assert result.returncode == 3
    assert "is not a Python source file" in result.stderr


def test_unwritable_output_is_one_line_error(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    (tmp_path / "file").write_text("not a folder")
    result = run_aitax("run", "-o", "file/rep", "ok.py", cwd=tmp_path)
    assert result.returncode == 5
    assert "cannot create report folder" in result.stderr


def test_unknown_pass_is_usage_error(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    result = run_aitax("run", "--passes", "clean,gpu", "ok.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "--passes 'clean,gpu' is invalid" in result.stderr


def test_view_rejects_bad_run_json(tmp_path: Path) -> None:
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "run.json").write_text("{not json")
    result = run_aitax("view", "--no-browser", "rep", cwd=tmp_path)
    assert result.returncode == 6
    assert "is unreadable" in result.stderr
    assert "Traceback" not in result.stderr


def test_view_prints_report_path(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    assert run_aitax("run", "-o", "rep", "ok.py", cwd=tmp_path).returncode == 0
    result = run_aitax("view", "--no-browser", "rep", cwd=tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "rep" / "report.html").as_uri() in result.stderr.replace("\n", "")
    flame = run_aitax("view", "--no-browser", "--flame", "rep", cwd=tmp_path)
    assert "cpu-pyinstrument.html" in flame.stderr.replace("\n", "")

    by_file = run_aitax("view", "--no-browser", "rep/run.json", cwd=tmp_path)
    assert by_file.returncode == 0, by_file.stderr
    assert (tmp_path / "rep" / "report.html").as_uri() in by_file.stderr.replace("\n", "")


def test_report_rerenders_from_run_json(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    assert run_aitax("run", "--passes", "clean", "-o", "rep", "ok.py", cwd=tmp_path).returncode == 0
    page = tmp_path / "rep" / "report.html"
    page.write_text("stale")

    refused = run_aitax("report", "rep", cwd=tmp_path)
    assert refused.returncode == 4
    assert "--force" in refused.stderr
    assert page.read_text() == "stale"

    again = run_aitax("report", "--force", "rep", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "ok.py" in page.read_text()

    elsewhere = run_aitax("report", "-o", "copy.html", "rep", cwd=tmp_path)
    assert elsewhere.returncode == 0
    assert "ok.py" in (tmp_path / "copy.html").read_text()


def test_secrets_are_redacted_everywhere(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("args.py", "import sys\nprint(len(sys.argv))\n")
    secrets = ["--password=hunter2", "API_KEY=sk-abc123", "--token", "tok-999",
               "postgres://user:pgpass@db/x"]  # fmt: skip
    result = run_aitax("run", "-o", "rep", "args.py", *secrets, "--passes-ok", "BATCH=32",
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for path in (tmp_path / "rep").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (b"hunter2", b"sk-abc123", b"tok-999", b"pgpass"):
                assert secret not in content, (path.name, secret)
    argv = json.loads((tmp_path / "rep" / "run.json").read_text())["environment"]["command"]
    assert "--passes-ok" in argv
    assert "BATCH=32" in argv
    assert "API_KEY=<redacted>" in argv


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--interval", "nan"], "--interval nan is invalid"),
        (["--timeout", "inf"], "--timeout inf is invalid"),
        (["--instance-cost-per-hour", "nan"], "--instance-cost-per-hour nan is invalid"),
        (["--passes", "clean,line"], "leaves the line pass nothing to profile"),
    ],
)
def test_bad_numbers_are_usage_errors(
    write_script, tmp_path: Path, options: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    result = run_aitax("run", *options, "ok.py", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_package_without_main_is_invalid_target(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("pkg/__init__.py", "")
    result = run_aitax("run", "-m", "pkg", cwd=tmp_path)
    assert result.returncode == 3
    assert "has no __main__ module" in result.stderr


def test_json_output_stays_parseable(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("chatty.py", "print('hello from the target')\n")
    result = run_aitax("run", "--json", "-q", "--passes", "clean", "-o", "rep", "chatty.py",
                       cwd=tmp_path)  # fmt: skip
    assert json.loads(result.stdout)["exit_code"] == 0
    assert "hello from the target" in result.stderr


def test_local_module_shadows_stdlib(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("tokenize.py", "def tokenize():\n    return 'local'\n")
    write_script("main.py", "from tokenize import tokenize\nprint(tokenize())\n")
    result = run_aitax("run", "--passes", "clean,cpu", "-o", "rep", "main.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "local"


def test_invalid_config_key_is_one_line_error(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("ok.py", "x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[tool.aitax]\ninstance_cost_per_hur = 1\n")
    result = run_aitax("run", "ok.py", cwd=tmp_path)
    assert result.returncode == 7
    assert "unknown key 'instance_cost_per_hur'" in result.stderr
