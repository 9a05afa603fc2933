"""`casebook sla deadline` and `casebook policy check` as an operator uses them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from casebook.policy_source import default_policy_text, load_policy
from entrypoints.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


BILLING_B = ("sla", "deadline", "--category", "billing", "--severity", "B")


def test_deadline_is_the_first_line_in_iso_8601_with_offset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, *BILLING_B, "--opened", "2025-01-24T17:00:00+08:00")
    assert code == 0
    assert out.splitlines() == ["2025-01-26T17:00:00+08:00"]


def test_explain_lists_counted_spans_and_skipped_days(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *BILLING_B, "--opened", "2025-01-24T17:00:00+08:00", "--explain")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "2025-01-26T17:00:00+08:00"
    assert "9h00m" in lines[1] and f"policy {load_policy().version}" in lines[1]
    assert lines[2].startswith("counted 2025-01-24T17:00+08:00 .. 2025-01-24T18:00+08:00")
    assert lines[3] == "skipped 2025-01-25 Sat: weekend"
    assert lines[4].endswith("8h00m (make-up working day)")


def test_json_output_carries_deadline_spans_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "sla",
        "deadline",
        "--category",
        "billing",
        "--severity",
        "C",
        "--opened",
        "2026-12-31T17:00:00+08:00",
        "--json",
    )
    document = json.loads(out.splitlines()[0])
    assert code == 0
    assert document["deadline"] == "2027-01-06T17:00:00+08:00"
    assert document["provisional_years"] == [2027]
    assert document["skipped_days"][0] == {
        "date": "2027-01-01",
        "reason": "public holiday: New Year's Day",
    }
    assert "provisional" in err


def test_presales_deadline_uses_the_customers_zone_and_country(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys,
        "sla",
        "deadline",
        "--category",
        "presales",
        "--severity",
        "B",
        "--opened",
        "2025-03-28T17:00:00+01:00",
        "--tz",
        "Europe/Warsaw",
        "--country",
        "PL",
    )
    assert code == 0
    assert out.splitlines()[0] == "2025-03-31T17:00:00+02:00"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ("--category", "hardware", "--severity", "B", "--opened", "2025-01-24T17:00:00+08:00"),
            "'hardware' is not one of",
        ),
        (
            ("--category", "billing", "--severity", "A", "--opened", "2025-01-24T17:00:00+08:00"),
            "rule: severity-a-only-for-technical",
        ),
        (
            ("--category", "technical", "--severity", "B", "--opened", "2025-01-24T17:00:00"),
            "has no UTC offset",
        ),
        (
            ("--category", "technical", "--severity", "B", "--opened", "next friday"),
            "not an ISO 8601 timestamp",
        ),
        (
            ("--category", "presales", "--severity", "B", "--opened", "2025-01-24T17:00:00+08:00"),
            "give --tz and --country",
        ),
        (
            (
                "--category",
                "presales",
                "--severity",
                "B",
                "--opened",
                "2025-01-24T17:00:00+08:00",
                "--tz",
                "Europe/Warsaw",
                "--country",
                "ZZ",
            ),
            "country 'ZZ'",
        ),
    ],
    ids=[
        "unknown-category",
        "billing-A",
        "naive-timestamp",
        "not-a-timestamp",
        "presales-no-locale",
        "bad-country",
    ],
)
def test_wrong_input_gives_one_line_error_and_nonzero_exit(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], expected: str
) -> None:
    code, out, err = run(capsys, "sla", "deadline", *argv)
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("casebook: error: ")
    assert expected in err


def test_policy_check_names_the_bad_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text(default_policy_text().replace("at_risk_ratio = 0.8", "at_risk_ratio = 2"))
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 1
    assert "field at_risk_ratio" in err
    assert len(err.strip().splitlines()) == 1


def test_a_configured_bad_policy_file_fails_at_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casebook.settings import get_settings

    bad = tmp_path / "policy.toml"
    bad.write_text(default_policy_text().replace('opens = "09:00"', 'opens = "9am"', 1))
    monkeypatch.setenv("CASEBOOK_POLICY_FILE", str(bad))
    get_settings.cache_clear()
    try:
        code, _, err = run(capsys, *BILLING_B, "--opened", "2025-01-24T17:00:00+08:00")
    finally:
        get_settings.cache_clear()
    assert code == 1
    assert "field calendars.extended_daily.opens" in err


def test_installed_console_script_runs() -> None:
    beside_python = Path(sys.executable).parent / "casebook"
    executable = str(beside_python) if beside_python.exists() else shutil.which("casebook")
    assert executable, "the casebook console script is not installed"
    done = subprocess.run(
        [executable, *BILLING_B, "--opened", "2025-01-24T17:00:00+08:00"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2025-01-26T17:00:00+08:00"
