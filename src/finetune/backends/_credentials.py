"""Keys and base URLs as a backend takes them, and what must never be shown of them.

Re-exported by ``finetune.backends.http``, where backend authors find them.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse

from finetune._secret_fields import SECRET_NAME

__all__ = [
    "account_identity",
    "check_base_url",
    "check_key",
    "key_and_url",
    "redact",
    "refuse_credentials_in_url",
]

_KEYLIKE = re.compile(
    r"\b((?:sk|fw|tgp|pk|rk)[-_][A-Za-z0-9]{0,4})[A-Za-z0-9_*-]{8,}|\b(Bearer\s+)\S+"
)
# the value of a field whose name says it is a secret, in JSON, a repr or a query string
_SECRET_FIELD = re.compile(
    rf"""((?:{SECRET_NAME})["']?\s*[:=]\s*)"""
    r"""(?:(["'])[^"']+\2|(?!(?:None|null)\b)[^"'\s,;&}\])]{4,})""",
    re.IGNORECASE,
)


def redact(text: str, *secrets: str | None) -> str:
    """Remove every known secret, anything key-like, and the value of any field named as a
    secret (``wandb_api_key``, ``apiKey``, ``client_secret``, ``password``) from a message."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}***{m.group(2) or ''}", text)
    return _KEYLIKE.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def key_and_url(
    api_key: str | None, url: str | None, *, key_variable: str, url_variable: str, default_url: str
) -> tuple[str | None, str]:
    """A provider's key and base URL: the ones given, else the environment's, else (for the
    URL) the provider's own; each without the blanks around it (a key file's or a Windows
    ``.env`` line's end), the URL without a trailing slash."""
    key = (api_key or os.environ.get(key_variable) or "").strip() or None
    if key is not None:
        check_key(key, key_variable)
    base_url = (url or os.environ.get(url_variable) or default_url).strip().rstrip("/")
    check_base_url(base_url, key_variable)
    return key, base_url


def check_key(key: str, key_variable: str) -> None:
    """A ``ValueError``, which never shows the key, for one that an HTTP header cannot carry
    (a space, a line break or a letter outside ASCII inside it): sent, it was a "connection
    error" after every retry, or an "unexpected answer", never a word about the key."""
    for position, char in enumerate(key, start=1):
        if char.isascii() and char.isprintable() and not char.isspace():
            continue
        what = {" ": "a space", "\n": "a line break", "\r": "a carriage return"}.get(
            char, f"the character U+{ord(char):04X}"
        )
        raise ValueError(
            f"the API key (api_key=, else {key_variable}) holds {what} at character {position} "
            f"of {len(key)}, which no key has: check how it was set (pasted with a space, two "
            "keys on one line, a character mistyped)"
        )


def check_base_url(url: str, key_variable: str | None = None) -> None:
    """A base URL an SDK can call: ``http(s)://host...``, without credentials in it
    (``refuse_credentials_in_url``), with no query or fragment (an SDK writes each request's
    path after the base URL: ``/v1?api-version=1`` sent calls to ``/v1?api-version=1/files``).
    Anything else (``localhost:8080``, a typo) is a ``ValueError`` naming it, values of its
    query left out, not a connection error after every retry."""
    refuse_credentials_in_url(url, key_variable)
    parts = urllib.parse.urlsplit(url)
    root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    has_tail = "?" in url or "#" in url
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = f"{root}{_tail_shown(url, parts)}" if has_tail else url
        raise ValueError(f"{shown!r} is not a server's URL: give one as http://127.0.0.1:8080/v1")
    if has_tail:
        raise ValueError(
            f"the URL {root}{_tail_shown(url, parts)} has a query or fragment after its path: an "
            "SDK adds each request's path after the base URL, so every call would go to a wrong "
            f"address; give the API root alone ({root}), and a key as api_key=..."
        )


def _tail_shown(url: str, parts: urllib.parse.SplitResult) -> str:
    """A URL's query and fragment without their values, which may be tokens."""
    names = [name for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    query = "?" + "&".join(f"{name}=..." for name in names) if "?" in url else ""
    return query + ("#..." if "#" in url else "")


def refuse_credentials_in_url(url: str, key_variable: str | None = None) -> None:
    """A ``ValueError``, which does not repeat them, for a URL holding credentials
    (``https://user:secret@host/v1``): an SDK sends them in place of the API key, and a URL is
    shown in reprs and kept in the job registry, where a secret must never be."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return
    shown = f"{parts.scheme}://***@{parts.netloc.rpartition('@')[2]}{parts.path}"
    variable = f" (or set {key_variable})" if key_variable else ""
    raise ValueError(
        f"the URL {shown} holds credentials (user:password@): give it without them, and the "
        f"key as api_key=...{variable}, which is never shown or saved"
    )


def account_identity(*parts: str | None, key: str | None) -> str:
    """An endpoint and account as one string for the job registry: the parts (base URL,
    organisation ...) and a short digest of the key, never the key itself."""
    digest = hashlib.sha256((key or "").encode()).hexdigest()[:12]
    return "|".join([*(part or "" for part in parts), digest])
