"""Helpers for backend authors: one retry policy, error mapping, redaction, paging, file names.

Every built-in hosted backend uses these, and a plugin may import them to behave the same way:

- ``retrying()`` / ``call_with_retries()``: exponential backoff with jitter (tenacity), never
  shorter than the provider's Retry-After, and no waiting past ``retry_after_cap``: a longer
  Retry-After ends the retries at once with a ``RateLimitError`` carrying the wait.
- ``error_for_status()``: an HTTP error answer as the matching ``BackendError``.
- ``json_answer()`` and ``@parses``: an unreadable or oddly shaped answer becomes a
  ``ServerError`` naming the provider, the status and a short excerpt, never a foreign error.
- ``foreign_error()``: any other exception as a ``ServerError`` whose cause is a redacted copy.
- ``key_and_url()``, ``check_key()``, ``check_base_url()``, ``redact()``,
  ``account_identity()``: a key and base URL as a backend takes them, and what is never shown
  of them (from ``finetune.backends._credentials``).
- ``written()`` / ``provider_file()``: a dataset in a provider's format as a temporary file;
  ``put_file()``: a file streamed to a signed upload URL, retried on its own.
- ``number``, ``whole``, ``text``, ``unix_time``, ``object_at``, ``list_at``, ``as_dict``:
  re-exported from ``finetune.backends.payloads``, where a mapping module finds the rest of
  the payload readers (``status_from``, ``metric_points``, ``with_figures`` ...).
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import json
import random
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from finetune._errors import (
    AuthenticationError,
    BackendError,
    FinetuneError,
    InvalidRequestError,
    JobNotFound,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from finetune._json_text import json_from_text
from finetune._namespace import PublicNames, public_names
from finetune.backends._credentials import (
    account_identity,
    check_base_url,
    check_key,
    key_and_url,
    redact,
    refuse_credentials_in_url,
)
from finetune.backends._files import file_name, provider_file, put_file, written
from finetune.backends.payloads import (
    as_dict,
    list_at,
    number,
    object_at,
    refuse_unknown_settings,
    text,
    unix_time,
    whole,
)

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState


__all__ = [
    "Backoff",
    "PageCollector",
    "RedactedCause",
    "account_identity",
    "as_dict",
    "blocking_call_with_retries",
    "call_with_retries",
    "check_base_url",
    "check_key",
    "error_for_status",
    "excerpt",
    "expect_object",
    "file_name",
    "foreign_error",
    "is_retryable",
    "json_answer",
    "key_and_url",
    "list_at",
    "number",
    "object_at",
    "parses",
    "path_segment",
    "provider_file",
    "put_file",
    "redact",
    "refuse_credentials_in_url",
    "refuse_unknown_settings",
    "retry_after_seconds",
    "retrying",
    "sdk_error",
    "sdk_request",
    "status_body",
    "text",
    "unix_time",
    "unreadable",
    "whole",
    "written",
]
__dir__: PublicNames = public_names(__name__)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_RETRY_AFTER_CAP = 120.0


def excerpt(text: Any, limit: int = 200) -> str:
    """A short, one-line excerpt of a provider's answer, for error messages."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class RedactedCause(Exception):
    """Stands in for a foreign exception (SDK, JSON, network) as ``__cause__`` of our error:
    its type and message, secrets removed, without the objects that hold the raw request."""

    def __init__(self, error: BaseException, *secrets: str | None) -> None:
        self.type_name: str = f"{type(error).__module__}.{type(error).__qualname__}"
        super().__init__(f"{self.type_name}: {redact(excerpt(error, 500), *secrets)}")


def foreign_error(
    provider: str, error: BaseException, *secrets: str | None, action: str = "call"
) -> BackendError:
    """An exception that is not ours (a parse error, a type error in an SDK) as a retryable
    ``ServerError`` that names the provider; its ``__cause__`` is a redacted copy."""
    if isinstance(error, BackendError):
        return error
    detail = excerpt(redact(str(error) or type(error).__name__, *secrets))
    mapped_error = ServerError(
        f"unexpected answer to {action}: {type(error).__name__}: {detail}", backend=provider
    )
    mapped_error.__cause__ = RedactedCause(error, *secrets)
    return mapped_error


def _is_connection_problem(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names
        & {"TransportError", "TimeoutException", "NoResponseError", "ConnectionError", "OSError"}
    )


_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def _status_of(error: BaseException) -> int | None:
    for name in ("status_code", "status"):
        value = getattr(error, name, None)
        if isinstance(value, int):
            return value
    value = getattr(getattr(error, "response", None), "status_code", None)
    return value if isinstance(value, int) else None


def is_retryable(error: BaseException) -> bool:
    """True for errors that a later attempt may not meet: our retryable errors (rate limits,
    5xx, connections), and foreign ones with such a status or a connection-like name."""
    if isinstance(error, FinetuneError):
        return isinstance(error, BackendError) and error.retryable
    status = _status_of(error)
    if status is not None:
        return status in _RETRY_STATUS
    name = type(error).__name__
    return any(word in name for word in ("Connection", "Timeout", "Network", "Protocol"))


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429 or 503 asks for, from ``retry-after-ms`` or ``retry-after`` (seconds, or
    the HTTP date to wait until, RFC 9110's other form)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except (TypeError, ValueError):
            until = _seconds_until(value) if scale == 1.0 else None
            if until is not None:
                return until
    return None


def _seconds_until(http_date: Any) -> float | None:
    """Seconds from now to an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``), 0 once past."""
    try:
        when = email.utils.parsedate_to_datetime(str(http_date))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _detail(body: Any) -> tuple[str, str | None, str | None]:
    """Message, offending field and code from any of the usual error shapes."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list) and detail:
            first = detail[0] if isinstance(detail[0], dict) else {}
            location = [str(p) for p in first.get("loc", []) or [] if p not in ("body", "query")]
            messages = "; ".join(str(d.get("msg")) for d in detail if isinstance(d, dict))
            return messages or str(detail), ".".join(location) or None, None
        if detail:
            return str(detail), None, None
        error = body.get("error")
        if isinstance(error, dict) and error:
            code = error.get("code")
            return (
                str(error.get("message") or error),
                _text_or_none(error.get("param")),
                _text_or_none(code),
            )
        if isinstance(error, str) and error:
            return error, None, None
        if body.get("message"):
            message = str(body["message"])
            return message, _text_or_none(body.get("param")), _text_or_none(body.get("code"))
    return (excerpt(body) if body not in (None, "") else "no detail given"), None, None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def error_for_status(
    provider: str,
    status: int,
    body: Any,
    headers: Any = None,
    *secrets: str | None,
    job_call: bool = False,
    key_hint: str = "",
) -> BackendError:
    """An HTTP error answer as the matching error of our tree (secrets redacted).

    ``job_call`` maps a 404 to ``JobNotFound``; ``key_hint`` ("Set OPENAI_API_KEY ...") is
    added to authentication errors.
    """
    message, param, code = _detail(body)
    message = redact(message, *secrets)
    common: dict[str, Any] = {"backend": provider, "status_code": status}
    if status == 401:
        hint = f". {key_hint}" if key_hint else ""
        return AuthenticationError(f"{message.rstrip('. ')}{hint}", code=code, **common)
    if status == 403:
        return PermissionDeniedError(message, code=code, **common)
    if status == 404 and job_call:
        return JobNotFound(message, code=code, **common)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after_seconds(headers), **common)
    if status >= 500:
        error = ServerError(f"{message} (HTTP {status})", code=code, **common)
        error.retry_after = retry_after_seconds(headers)
        return error
    return InvalidRequestError(message, param=param, code=code or str(status), **common)


def json_answer(provider: str, status: int, text: str) -> Any:
    """A 2xx answer's JSON, or a ``ServerError`` naming the status and an excerpt."""
    try:
        return json_from_text(text)
    except ValueError:
        pass
    # raised outside the handler: the parse error is not kept as __context__
    raise ServerError(
        f"answered HTTP {status} with a body that is not JSON: {excerpt(text) or '(empty)'}",
        backend=provider,
        status_code=status,
    )


def unreadable(provider: str, what: str, payload: Any, error: BaseException) -> ServerError:
    """The error for a payload a mapping could not read, with an excerpt of it."""
    shown = excerpt(json.dumps(payload, default=str) if payload is not None else "null")
    mapped_error = ServerError(
        f"answered a {what} we cannot read ({type(error).__name__}: {excerpt(error, 80)}): {shown}",
        backend=provider,
    )
    mapped_error.__cause__ = RedactedCause(error)
    return mapped_error


_MAPPING_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def parses(provider: str, what: str) -> Callable[[F], F]:
    """Decorate a mapping function (payload -> our model): an oddly shaped payload (its first
    argument) becomes a ``ServerError`` with an excerpt instead of a foreign exception."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def guarded(payload: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return function(payload, *args, **kwargs)
            except FinetuneError:
                raise
            except _MAPPING_ERRORS as exc:
                failure: BaseException = exc
            # raised outside the handler: no foreign __context__, only the redacted __cause__
            raise unreadable(provider, what, payload, failure)

        return guarded  # type: ignore[return-value]

    return decorate


def expect_object(provider: str, what: str, payload: Any) -> dict[str, Any]:
    """``payload`` when it is a JSON object, else a ``ServerError`` with an excerpt."""
    if isinstance(payload, dict):
        return payload
    shown = excerpt(json.dumps(payload, default=str))
    raise ServerError(f"answered a {what} that is not an object: {shown}", backend=provider)


class Backoff:
    """Exponential backoff with jitter, capped, never shorter than the server's Retry-After.

    Used for retries (``factor=2``) and for polling a job (``factor=1.5``, a larger cap).
    """

    def __init__(self, first: float = 0.5, cap: float = 10.0, factor: float = 2.0) -> None:
        self.first = first
        self.cap: float = max(cap, first)
        self.factor = factor

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        base = min(self.cap, self.first * self.factor ** (attempt - 1))
        wait = base * random.uniform(0.9, 1.1)
        hinted = getattr(error, "retry_after", None)
        if isinstance(hinted, (int, float)) and hinted > 0:
            wait = max(wait, float(hinted))
        return wait

    def __call__(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        return self.delay(state.attempt_number, error)


def _stop_retrying(attempts: int, retry_after_cap: float) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= attempts:
            return True
        outcome = state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        hinted = getattr(error, "retry_after", None)
        return isinstance(hinted, (int, float)) and hinted > retry_after_cap

    return stop


def retrying(
    attempts: int = 6,
    *,
    first: float = 0.5,
    cap: float = 10.0,
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
    retry: Callable[[BaseException], bool] = is_retryable,
) -> AsyncRetrying:
    """The one retry policy: ``async for attempt in retrying(): with attempt: ...``.

    Retries what ``retry`` accepts (rate limits, 5xx, connection problems) up to ``attempts``
    tries; a Retry-After longer than ``retry_after_cap`` seconds ends it at once with the
    error, which carries the wait (``RateLimitError.retry_after``).
    """
    from tenacity import AsyncRetrying

    return AsyncRetrying(**_policy(attempts, first, cap, retry_after_cap, retry))


def blocking_call_with_retries(
    call: Callable[[], T], attempts: int = 5, *, first: float = 0.25, cap: float = 8.0
) -> T:
    """``call()`` under the same policy as ``retrying()``, for blocking code that cannot
    await (a judge model asked from inside a metric)."""
    from tenacity import Retrying

    policy = _policy(attempts, first, cap, DEFAULT_RETRY_AFTER_CAP, is_retryable)
    for attempt in Retrying(**policy):
        with attempt:
            return call()
    raise AssertionError("unreachable")  # pragma: no cover


def _policy(
    attempts: int,
    first: float,
    cap: float,
    retry_after_cap: float,
    retry: Callable[[BaseException], bool],
) -> dict[str, Any]:
    from tenacity import retry_if_exception

    return {
        "retry": retry_if_exception(retry),
        "stop": _stop_retrying(attempts, retry_after_cap),
        "wait": Backoff(first, cap),
        "reraise": True,
    }


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    attempts: int = 6,
    *,
    first: float = 0.5,
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
    done: Callable[[], Awaitable[T | None]] | None = None,
) -> T:
    """``await call()`` under ``retrying()``: for idempotent calls (reads, lookups).

    A call that is not idempotent but whose effect can be read back (a create, a completion,
    a state change) passes ``done``: before each retry it is awaited, and what it finds (not
    None) is returned instead of calling again, as the last try took effect and only its
    answer was lost.
    """
    async for attempt in retrying(attempts, first=first, retry_after_cap=retry_after_cap):
        with attempt:
            if done is not None and attempt.retry_state.attempt_number > 1:
                found = await done()
                if found is not None:
                    return found
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


class PageCollector:
    """Collects items across page-numbered answers; done at ``total``, a short or repeated page."""

    def __init__(self, limit: int, page_size: int, key: str = "id") -> None:
        self.limit = limit
        self.page_size = page_size
        self.items: list[dict[str, Any]] = []
        self._key = key
        self._seen: set[str] = set()

    def add(self, data: list[Any], total: Any = None) -> bool:
        """Take one page's items; True when no further page is worth asking for."""
        fresh = [d for d in data if isinstance(d, dict) and str(d.get(self._key)) not in self._seen]
        for item in fresh[: self.limit - len(self.items)]:
            self._seen.add(str(item.get(self._key)))
            self.items.append(item)
        return (
            not fresh
            or len(self.items) >= self.limit
            or len(data) < self.page_size
            or bool(isinstance(total, int) and len(self.items) >= total)
        )


def path_segment(provider: str, value: str, what: str = "job id", *, safe: str = "") -> str:
    """An id as one segment of a URL path, percent-encoded but for the characters in ``safe``
    (``":"`` for Mistral's model ids; ``/`` is encoded all the same): an id holding ``/``,
    ``?`` or ``#`` (``../files/x``) reaches no other resource and adds no query. A blank id,
    ``.`` or ``..`` names nothing: an ``InvalidRequestError`` before anything is sent."""
    if not isinstance(value, str) or value.strip() in ("", ".", ".."):
        raise InvalidRequestError(f"{value!r} is not a {what}", backend=provider, param=what)
    return urllib.parse.quote(value, safe=safe.replace("/", ""))


def connection_error(
    provider: str, error: BaseException, *secrets: str | None, url: str | None = None
) -> ServerError:
    """A network failure (reset, timeout, refused) as a retryable ``ServerError``, naming
    the ``url`` asked where one server of many could be meant (an OpenAI-compatible one)."""
    detail = redact(excerpt(_with_its_cause(error)), *secrets)
    at = f" at {url}" if url else ""
    if _refused(error):
        detail += "; nothing listens there: is the server running, and is the URL right?"
    mapped_error = ServerError(f"connection problem{at}: {detail}", backend=provider)
    mapped_error.__cause__ = RedactedCause(error, *secrets)
    return mapped_error


def _with_its_cause(error: BaseException) -> str:
    """An SDK's "Connection error." with the socket's own words that caused it (``[Errno
    111] Connection refused``, ``Name or service not known``), which it hides."""
    said = str(error) or type(error).__name__
    cause = str(_chain(error)[-1])
    return f"{said} ({cause})" if cause and cause not in said else said


def _chain(error: BaseException) -> list[BaseException]:
    """The error, then what caused it, down to the first cause (each once)."""
    chain, seen = [error], {id(error)}
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None:
        if id(inner) in seen:
            break
        chain.append(inner)
        seen.add(id(inner))
    return chain


def _refused(error: BaseException) -> bool:
    """Whether the machine asked answered that no program listens on the port (a local
    server not started, a wrong port), beneath whatever the SDK wrapped it in."""
    return any(
        isinstance(link, ConnectionRefusedError) or "Connect call failed" in str(link)
        for link in _chain(error)
    )


def is_connection_problem(error: BaseException) -> bool:
    """True for transport failures of httpx, httpcore, the SDKs and the socket layer."""
    return _is_connection_problem(error)


def status_body(response: Any) -> Any:
    """An error answer's body for ``error_for_status``: its JSON, else its text (an HTML page,
    or a streamed body never read: empty)."""
    try:
        return response.json()
    except Exception:  # not JSON: the text is the detail
        try:
            return str(response.text)
        except Exception:  # a streamed body that was never read
            return ""


def sdk_error(
    provider: str,
    sdk: Callable[[], Any],
    error: BaseException,
    secret: str | None,
    *,
    body: Callable[[Any], Any] | None = None,
    job_call: bool = False,
    key_hint: str = "",
    url: str | None = None,
) -> Exception:
    """An exception from a Stainless-generated SDK (``sdk()`` imports the openai, together or
    fireworks module, only once the error is not already ours) or from below it, as ours: a
    status error by its status and ``body(error)`` (default: ``status_body`` of its response),
    a transport failure as a retryable ``ServerError`` (naming ``url``, if given), anything
    else as a ``ServerError`` with a redacted cause."""
    if isinstance(error, FinetuneError):
        return error
    module = sdk()
    if isinstance(error, module.APIStatusError):
        return error_for_status(
            provider,
            error.status_code,
            body(error) if body is not None else status_body(error.response),
            error.response.headers,
            secret,
            job_call=job_call,
            key_hint=key_hint,
        )
    if isinstance(error, module.APIConnectionError) or is_connection_problem(error):
        return connection_error(provider, error, secret, url=url)
    return foreign_error(provider, error, secret)


async def sdk_request(
    client: Any,
    method: str,
    path: str,
    *,
    provider: str,
    on_error: Callable[[Exception], Exception],
    **arguments: Any,
) -> Any:
    """One request through the generic ``get``/``post``/``delete`` of a Stainless-generated SDK
    (openai, together, fireworks): its JSON answer (``{}`` for an empty body), or the error
    ``on_error`` maps the SDK's exception to. ``params`` become the query string."""
    import httpx

    params = arguments.pop("params", None)
    options = {"params": params} if params else {}
    try:
        answer = await getattr(client, method)(
            path, cast_to=httpx.Response, options=options, **arguments
        )
    except Exception as exc:
        error = on_error(exc)
    else:
        return json_answer(provider, answer.status_code, answer.text or "{}")
    raise error
