"""Redaction of command-line arguments that look like secrets, before they reach a report."""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "<redacted>"

# Words that mark a name as a secret, matched as whole parts of names split at
# -, _ and case changes: `--api-key`, `API_KEY` and `dbPassword` all match, and
# `--passes` and `--keys-file` do not.
_SECRET_PARTS = frozenset({
    "password", "passwd", "pwd", "pass", "passphrase", "token", "secret", "key", "apikey",
    "credential", "credentials", "auth", "authorization", "cookie", "session", "dsn",
    "signature", "private",
})  # fmt: skip
# Credentials inside a URL: scheme://user:password@host.
_URL_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]*(?=@)")


def _name_parts(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.lstrip("-"))
    return [part.lower() for part in re.split(r"[-_.\s]+", spaced) if part]


def is_secret_name(name: str) -> bool:
    """Return True when an option or variable name says its value is a secret."""
    parts = _name_parts(name)
    if not parts:
        return False
    # `--api-key` and `--openai-key` end in a secret word; `--key-file` names a path.
    return parts[-1] in _SECRET_PARTS or any(p in _SECRET_PARTS - {"key", "session"} for p in parts)


def _redact_urls(argument: str) -> str:
    return _URL_CREDENTIALS.sub(lambda match: match.group("head") + REDACTED, argument)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Return `argv` with secret-looking values replaced by <redacted>.

    Redacted: the value after or inside an option whose name is a secret word
    (`--password X`, `--api-key=X`), NAME=value pairs whose name is one
    (`API_KEY=X`), and passwords in URLs (`postgres://user:X@host`).
    """
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
            continue

        name, equals, _ = argument.partition("=")
        if equals and is_secret_name(name):
            redacted.append(f"{name}={REDACTED}")
        elif argument.startswith("-") and not equals and is_secret_name(argument):
            redacted.append(argument)
            hide_next = True
        else:
            redacted.append(_redact_urls(argument))
    return redacted
