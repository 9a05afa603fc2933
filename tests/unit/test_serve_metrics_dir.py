"""`serve --workers N` hands its API processes an empty metrics directory, and tidies it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from casebook.settings import Settings
from entrypoints.cli.serve import shared_metrics_dir

NAMED = ("CASEBOOK_API_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture(autouse=True)
def restored_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # shared_metrics_dir sets both for the API processes; this process gets back what it
    # had (setenv records that), and the settings read here start without either.
    for name in NAMED:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_a_named_directory_loses_a_killed_runs_files_and_keeps_anything_else(
    tmp_path: Path,
) -> None:
    (tmp_path / "histogram_4242.db").write_bytes(b"counts of a killed run")
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"pools of a killed run")
    (tmp_path / "notes.txt").write_text("an operator's")
    with shared_metrics_dir(Settings(api_metrics_dir=tmp_path)) as path:
        assert path == tmp_path.resolve()
        assert sorted(p.name for p in path.iterdir()) == ["notes.txt"]
        assert [os.environ[name] for name in NAMED] == [str(path)] * 2
        (path / "counter_1.db").write_bytes(b"this run's")
    assert (tmp_path / "counter_1.db").exists()  # left for a look after the stop


def test_without_a_named_directory_a_fresh_one_is_made_and_removed_at_stop() -> None:
    with shared_metrics_dir(Settings()) as path:
        assert path.is_dir() and not any(path.iterdir())
        assert [os.environ[name] for name in NAMED] == [str(path)] * 2
        (path / "counter_1.db").write_bytes(b"this run's")
    assert not path.exists()


def test_a_directory_that_cannot_be_made_ends_serve_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with (
        pytest.raises(typer.Exit) as ended,
        shared_metrics_dir(Settings(api_metrics_dir=blocked / "metrics")),
    ):
        pass
    assert ended.value.exit_code == 1
    assert (
        capsys.readouterr().err
        == f"casebook: error: metrics directory {blocked / 'metrics'}: Not a directory\n"
    )
