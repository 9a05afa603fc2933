"""Logs: JSON lines off a terminal, one pipeline for every library, no personal data."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from casebook.settings import Settings
from entrypoints.logging import configure_logging, is_personal_key, reset_logging, scrub_text

PHONE = "+48 22 123 45 67"
EMAIL = "it@acme.example"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    structlog.contextvars.clear_contextvars()
    root.setLevel(level)


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines()]


def test_logs_are_json_lines_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format="auto"))
    structlog.get_logger("casebook.test").info("case.opened", case_id="c-1")
    [line] = json_lines(capsys)
    assert line["event"] == "case.opened" and line["case_id"] == "c-1"
    assert line["level"] == "info" and line["logger"] == "casebook.test"
    assert line["timestamp"].endswith("Z")  # ISO 8601 in UTC


def test_console_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="console"))
    structlog.get_logger().info("case.opened")
    out = capsys.readouterr().out
    assert "case.opened" in out and not out.lstrip().startswith("{")


def test_personal_data_is_masked_by_key_and_scrubbed_from_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format="json"))
    structlog.get_logger().info(
        "caller.verified",
        caller_phone=PHONE,
        email=EMAIL,
        contact_value=PHONE,
        code="493021",
        token="cbk_abc_def",
        password="hunter2",
        note=f"call back on {PHONE} or write to {EMAIL}",
        details={"phone": PHONE, "reason": "printer"},
        status_code=200,
        opened_at="2025-01-24T17:00:00+08:00",
    )
    raw = capsys.readouterr().out
    for secret in (PHONE, EMAIL, "493021", "cbk_abc_def", "hunter2"):
        assert secret not in raw
    [line] = [json.loads(raw)]
    assert line["caller_phone"] == line["email"] == line["code"] == "***"
    assert line["note"] == "call back on [phone] or write to [email]"
    assert line["details"] == {"phone": "***", "reason": "printer"}
    assert line["status_code"] == 200, "harmless codes stay readable"
    assert line["opened_at"] == "2025-01-24T17:00:00+08:00", "offsets are not phone numbers"


def test_library_logs_share_the_pipeline_and_the_masking(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format="json"))
    logging.getLogger("uvicorn.error").warning("client %s said %s", EMAIL, PHONE)
    [line] = json_lines(capsys)
    assert line["event"] == "client [email] said [phone]"
    assert line["logger"] == "uvicorn.error" and line["level"] == "warning"


def test_exceptions_in_json_are_rendered_and_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json"))
    try:
        raise ValueError(f"bad contact {EMAIL}")
    except ValueError:
        structlog.get_logger().exception("command.failed")
    [line] = json_lines(capsys)
    assert "ValueError: bad contact [email]" in line["exception"]


def test_context_variables_are_merged_into_every_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format="json"))
    structlog.contextvars.bind_contextvars(request_id="req-7")
    structlog.get_logger().info("case.opened")
    logging.getLogger("some.library").warning("slow query")  # a stdlib logger
    assert [line["request_id"] for line in json_lines(capsys)] == ["req-7", "req-7"]


def test_configuring_again_replaces_rather_than_duplicates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format="json"))
    configure_logging(Settings(log_format="json", log_level="warning"), stream="stderr")
    structlog.get_logger().info("quiet")
    structlog.get_logger().warning("loud")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [json.loads(line)["event"] for line in captured.err.splitlines()] == ["loud"]


@pytest.mark.parametrize(
    ("key", "personal"),
    [
        ("phone", True),
        ("caller_phone", True),
        ("contact_value", True),
        ("email", True),
        ("verification_code", True),
        ("api-token", True),
        ("status_code", False),
        ("case_id", False),
        ("principal_id", False),
    ],
)
def test_personal_keys_are_recognised(key: str, personal: bool) -> None:
    assert is_personal_key(key) is personal


def test_scrubbing_leaves_dates_ids_and_offsets_alone() -> None:
    text = "case 3e60463f opened 2025-01-24T17:00:00+08:00, 12345678 bytes"
    assert scrub_text(text) == text


def test_uvicorns_access_line_stays_off_whoever_configured_logging_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The API processes of `serve --workers N` configure logging after uvicorn did.
    logging.getLogger("uvicorn.access").propagate = True
    configure_logging(Settings(log_format="json"))

    logging.getLogger("uvicorn.access").info('127.0.0.1 - "POST /cases/x/notes?q=1" 200')

    assert json_lines(capsys) == []
