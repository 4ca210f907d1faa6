"""Redaction of command-line arguments that look like secrets, before they reach a report."""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "<redacted>"

# Words that mark a name as a secret, matched as whole parts of names split at
# -, _, . and case changes: `--client-secret`, `API_TOKEN` and `dbPassword` all
# match, and `--passes` does not.
_SECRET_PARTS = frozenset({
    "password", "passwd", "pwd", "passphrase", "token", "secret", "apikey", "credential",
    "credentials", "auth", "authorization", "cookie", "dsn", "signature", "private",
})  # fmt: skip
# Words that mark a secret only as the last part of a name: `--api-key` and
# `DB_PASS` name secrets, and `--key-file` and `--pass-through` do not.
_SECRET_LAST_PARTS = frozenset({"key", "pass", "session"})
# Short options whose value is hidden. `-p` is the password option of mysql and
# sshpass, so a port or a plugin passed as `-p` is hidden too.
_SECRET_SHORT_OPTIONS = frozenset({"-p"})

# A password in a URL, scheme://user:password@host. The user and the host stay.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]*(?=@)")
# A query parameter, such as ?api_key=X in a URL.
_QUERY_PARAMETER = re.compile(r"(?P<head>[?&;](?P<name>[^=&#;\s]+)=)(?P<value>[^&#;\s]*)")
# An HTTP header as curl's -H takes it: `Authorization: Bearer X`.
_HEADER = re.compile(r"\s*(?P<name>[A-Za-z][A-Za-z0-9_-]*)[ \t]*:(?P<value>.*)", re.DOTALL)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)\S+", re.IGNORECASE)
# A string value in JSON or a Python dict literal: {"password": "X"}.
_QUOTED_PAIR = re.compile(
    r"""(?P<head>(?P<quote>["'])(?P<name>[^"']+)(?P=quote)\s*:\s*)["'][^"']*["']"""
)


def _name_parts(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.lstrip("-"))
    return [part.lower() for part in re.split(r"[-_.\s]+", spaced) if part]


def is_secret_name(name: str) -> bool:
    """Return True when an option, variable or header name says its value is a secret."""
    parts = _name_parts(name)
    # `--no-auth` switches a feature off and takes no secret.
    if not parts or parts[0] == "no":
        return False
    return parts[-1] in _SECRET_LAST_PARTS or any(part in _SECRET_PARTS for part in parts)


def _redact_quoted_pair(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("name")):
        return match.group(0)
    quote = match.group("quote")
    return f"{match.group('head')}{quote}{REDACTED}{quote}"


def _redact_query_parameter(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("name")):
        return match.group(0)
    return match.group("head") + REDACTED


def _redact_inside(text: str) -> str:
    """Redact the secrets that a value can carry in itself, whatever option it belongs to."""
    name, equals, value = text.partition("=")
    if equals and is_secret_name(name):
        return f"{name}={REDACTED}"
    # `--env=API_KEY=X` and `--header=Authorization: X` carry a pair as their value.
    if equals and name.startswith("-"):
        return f"{name}={_redact_inside(value)}"

    header = _HEADER.fullmatch(text)
    if header is not None and is_secret_name(header.group("name")):
        return f"{header.group('name')}: {REDACTED}"

    text = _URL_PASSWORD.sub(lambda match: match.group("head") + REDACTED, text)
    text = _QUERY_PARAMETER.sub(_redact_query_parameter, text)
    text = _QUOTED_PAIR.sub(_redact_quoted_pair, text)
    return _BEARER.sub(lambda match: match.group("head") + REDACTED, text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Return `argv` with secret-looking values replaced by <redacted>.

    Redacted: the value after or inside an option whose name is a secret word
    (`--password X`, `--api-key=X`, `-p X`, `-pX`), NAME=value pairs whose name
    is one (`API_KEY=X`), such headers (`Authorization: X`), bearer tokens,
    passwords in URLs (`postgres://user:X@host`), such query parameters
    (`?token=X`), and such keys in JSON (`{"password": "X"}`).
    """
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
            continue

        option = argument.partition("=")[0]
        if argument.startswith("-") and "=" not in argument and is_secret_name(argument):
            redacted.append(argument)
            hide_next = True
        elif option in _SECRET_SHORT_OPTIONS:
            hide_next = option == argument
            redacted.append(argument if hide_next else f"{option}={REDACTED}")
        elif _is_attached_short_value(argument):
            redacted.append(argument[:2] + REDACTED)
        else:
            redacted.append(_redact_inside(argument))
    return redacted


def _is_attached_short_value(argument: str) -> bool:
    """Return True for a value written onto its short option, as in mysql's `-pSECRET`."""
    return (
        len(argument) > 2
        and not argument.startswith("--")
        and argument[:2] in _SECRET_SHORT_OPTIONS
    )
