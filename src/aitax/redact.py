"""Redaction of command-line arguments that look like secrets, before they reach a report."""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "<redacted>"

_SECRET_WORDS = re.compile(
    r"pass(word|wd|phrase)?|token|secret|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"credential|auth|session|cookie|dsn|signature",
    re.IGNORECASE,
)
# NAME=value pairs written like environment variables: FOO_BAR=...
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def _is_secret_option(argument: str) -> bool:
    return argument.startswith("-") and bool(_SECRET_WORDS.search(argument.lstrip("-")))


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Return `argv` with the values of secret-looking options and NAME=value pairs replaced."""
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
            continue

        name, equals, _ = argument.partition("=")
        if (equals and (_is_secret_option(name) or _ENV_ASSIGNMENT.match(argument))) or (
            equals and not name.startswith("-") and _SECRET_WORDS.search(name)
        ):
            redacted.append(f"{name}={REDACTED}")
        elif _is_secret_option(argument):
            redacted.append(argument)
            hide_next = True
        else:
            redacted.append(argument)
    return redacted
