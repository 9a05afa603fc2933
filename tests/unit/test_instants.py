"""The instants callers may give: 1970 up to the end of 8999, whatever their offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from api.instants import EARLIEST, LATEST, InstantOutOfRange, within_range


@pytest.mark.parametrize(
    "text",
    [
        "1970-01-01T00:00:00Z",
        "1970-01-01T01:00:00+01:00",
        "2025-03-01T09:00:00-05:00",
        "8999-12-31T23:59:59.999999Z",
        "9000-01-01T00:00:00+00:01",
    ],
)
def test_instants_in_range_are_returned_as_given(text: str) -> None:
    at = datetime.fromisoformat(text)
    assert within_range(at) is at


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-14:00",  # converting it to UTC overflows
        "0001-01-01T00:00:00+14:00",  # so does this one
        "9000-01-01T00:00:00Z",
        "8999-12-31T23:59:59-00:01",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:59:59+01:00",
        "9999-12-31T23:59:59",  # no offset: read as UTC, and out of range anyway
    ],
)
def test_instants_out_of_range_are_refused_saying_the_range(text: str) -> None:
    with pytest.raises(InstantOutOfRange, match="1970-01-01T00:00:00Z to 8999-12-31T23:59:59Z"):
        within_range(datetime.fromisoformat(text))


def test_from_either_end_a_year_either_way_converts_to_utc_in_any_offset() -> None:
    year = timedelta(days=366)
    for end in (EARLIEST, LATEST - timedelta(microseconds=1)):
        for hours in (-14, 14):
            at = end.astimezone(timezone(timedelta(hours=hours)))
            for moved in (at - year, at + year):
                assert moved.astimezone(UTC) == moved  # no OverflowError
