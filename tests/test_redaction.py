"""Secret-looking arguments stay out of every file of a report, and the target still gets them."""

from __future__ import annotations

import json
from pathlib import Path

import memray
import pytest

from aitax.redact import REDACTED, is_secret_name, redact_argv
from conftest import run_aitax

REDACTION_CASES = [
    (["-p", "pw999"], ["-p", REDACTED]),
    (["-ppw999"], [f"-p{REDACTED}"]),
    (["-p=pw999"], [f"-p={REDACTED}"]),
    (["--pwd=pwd666"], [f"--pwd={REDACTED}"]),
    (["--password", "hunter2"], ["--password", REDACTED]),
    (["--password=hunter2"], [f"--password={REDACTED}"]),
    (["--openai-key", "sk-proj-888"], ["--openai-key", REDACTED]),
    (["--api-key=sk-1"], [f"--api-key={REDACTED}"]),
    (["--token", "tok-1"], ["--token", REDACTED]),
    (["--secret", "s3"], ["--secret", REDACTED]),
    (["--client-secret", "cs-1"], ["--client-secret", REDACTED]),
    (["--dbPassword", "x1"], ["--dbPassword", REDACTED]),
    (["API_KEY=sk-abc123"], [f"API_KEY={REDACTED}"]),
    (["DB_PASS=pp1"], [f"DB_PASS={REDACTED}"]),
    (["--env=API_KEY=sk-2"], [f"--env=API_KEY={REDACTED}"]),
    (["Authorization: Bearer x"], [f"Authorization: {REDACTED}"]),
    (["-H", "Authorization: Bearer x"], ["-H", f"Authorization: {REDACTED}"]),
    (["--header=X-Api-Key: k1"], [f"--header=X-Api-Key: {REDACTED}"]),
    (["Bearer abc.def"], [f"Bearer {REDACTED}"]),
    (
        ["--db-url", "postgres://user:pgpass@127.0.0.1/db"],
        ["--db-url", f"postgres://user:{REDACTED}@127.0.0.1/db"],
    ),
    (
        ["--db-url=mysql://app:pw@127.0.0.1:3306/x"],
        [f"--db-url=mysql://app:{REDACTED}@127.0.0.1:3306/x"],
    ),
    (["http://127.0.0.1/x?a=1&api_key=k9"], [f"http://127.0.0.1/x?a=1&api_key={REDACTED}"]),
    (['{"password": "pp", "n": "1"}'], [f'{{"password": "{REDACTED}", "n": "1"}}']),
    # Not secrets: these must pass unchanged.
    (["--passes", "clean,cpu"], ["--passes", "clean,cpu"]),
    (["--passes=clean,cpu"], ["--passes=clean,cpu"]),
    (["BATCH=32"], ["BATCH=32"]),
    (["mode=fast"], ["mode=fast"]),
    (["--key-file", "model.pem"], ["--key-file", "model.pem"]),
    (["--pass-through", "x"], ["--pass-through", "x"]),
    (["--no-auth", "script.py"], ["--no-auth", "script.py"]),
    (["Content-Type: application/json"], ["Content-Type: application/json"]),
    (["http://127.0.0.1:8000/predict"], ["http://127.0.0.1:8000/predict"]),
    (["--batch-size", "512", "data.csv"], ["--batch-size", "512", "data.csv"]),
]


@pytest.mark.parametrize(("argv", "expected"), REDACTION_CASES, ids=lambda case: " ".join(case))
def test_redact_argv_cases(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


@pytest.mark.parametrize("name", ["--password", "API_KEY", "dbPassword", "--openai-key", "DB_PASS"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["--passes", "BATCH", "mode", "--key-file", "--no-auth", ""])
def test_names_that_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


SECRETS = ("hunter2", "sk-abc123", "pw999", "pwd666", "sk-proj-888", "pgpass", "tok777", "cs-555")
SECRET_ARGS = [
    "--password=hunter2", "API_KEY=sk-abc123", "-p", "pw999", "--pwd=pwd666",
    "--openai-key", "sk-proj-888", "--db-url", "postgres://user:pgpass@127.0.0.1/db",
    "Authorization: Bearer tok777", "--client-secret", "cs-555", "BATCH=32", "mode=fast",
]  # fmt: skip

# The target exits 3 unless it got its arguments unchanged, and 4 if any file in
# the report folder contains a secret while it runs: specs included, in every pass.
CHECKING_TARGET = """
import json, sys
from pathlib import Path
from scoring import score

expected = json.loads(Path("expected.json").read_text())
if sys.argv[1:] != expected["args"]:
    sys.exit(3)
for path in Path("rep").rglob("*"):
    if path.is_file():
        content = path.read_bytes()
        if any(secret.encode() in content for secret in expected["secrets"]):
            print("secret found in", path, file=sys.stderr)
            sys.exit(4)
for _ in range(200):
    score(range(2000))
"""


def files_with_secrets(folder: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            found += [(str(path), s) for s in SECRETS if s.encode() in content]
    return found


def test_report_folder_contains_no_secrets(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("args.py", CHECKING_TARGET)
    write_script("scoring.py", "def score(values):\n    return sum(v * v for v in values)\n")
    expected = {"args": SECRET_ARGS, "secrets": list(SECRETS)}
    (tmp_path / "expected.json").write_text(json.dumps(expected))

    # The line pass profiles the named function, whatever the CPU samples show.
    result = run_aitax("run", "-q", "--line-profile", "scoring:score", "-o", "rep", "args.py",
                       *SECRET_ARGS, cwd=tmp_path)  # fmt: skip

    assert result.returncode == 0, result.stderr
    report = tmp_path / "rep"
    run = json.loads((report / "run.json").read_text())
    assert [(p["name"], p["status"], p["exit_code"]) for p in run["passes"]] == [
        ("clean", "ok", 0),
        ("cpu", "ok", 0),
        ("memory", "ok", 0),
        ("line", "ok", 0),
    ]
    assert (report / "memory-flamegraph.html").is_file()
    assert list(report.rglob("*.spec.json")) == []
    assert files_with_secrets(report) == []


def test_memray_capture_records_redacted_command(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """memray compresses its capture, so the command line is read back through its reader."""
    write_script("args.py", "import sys\nx = [bytearray(1000) for _ in range(100)]\n")
    result = run_aitax(
        "run", "-q", "--passes", "memory", "-o", "rep", "args.py", *SECRET_ARGS, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr

    reader = memray.FileReader(str(tmp_path / "rep" / "captures" / "memory.bin"))
    try:
        command_line = reader.metadata.command_line
    finally:
        reader.close()
    assert command_line.startswith("args.py --password=<redacted> API_KEY=<redacted>")
    assert "BATCH=32 mode=fast" in command_line
    assert [s for s in SECRETS if s in command_line] == []
    flamegraph = (tmp_path / "rep" / "memory-flamegraph.html").read_text()
    assert "--password=&lt;redacted&gt;" in flamegraph
    assert [s for s in SECRETS if s in flamegraph] == []


def test_arguments_larger_than_pipe_buffer_arrive_whole(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The spec goes to each pass through a pipe. At 200 KB it exceeds the 64 KB buffer of a
    Linux pipe, so the runner must keep writing while the pass reads."""
    args = [f"item-{index:05d}-" + "x" * 40 for index in range(4000)]
    (tmp_path / "expected.json").write_text(json.dumps(args))
    write_script(
        "big.py",
        "import json, sys\n"
        "expected = json.load(open('expected.json'))\n"
        "sys.exit(0 if sys.argv[1:] == expected else 3)\n",
    )
    result = run_aitax("run", "-q", "--passes", "clean,cpu", "-o", "rep", "big.py", *args,
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = json.loads((tmp_path / "rep" / "run.json").read_text())
    assert [p["exit_code"] for p in run["passes"]] == [0, 0]
