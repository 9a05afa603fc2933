"""The group-commit writer stops leading on Ctrl-C and leaves nobody waiting."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from casebook.writer import GroupCommitWriter, Pending

Item = Pending[str, None, str]


def test_ctrl_c_in_a_batch_stops_its_leader_and_fails_the_leaders_other_commands() -> None:
    ran: list[list[str]] = []

    def process(batch: list[Item]) -> list[Item]:
        ran.append([pending.command for pending in batch])
        if len(ran) == 1:
            raise KeyboardInterrupt
        for pending in batch:
            pending.future.set_result(pending.command.upper())
        return []

    writer: GroupCommitWriter[str, None, str] = GroupCommitWriter(process, max_batch=2)
    with pytest.raises(KeyboardInterrupt):
        writer.submit_many([(name, None) for name in ("a", "b", "c", "d", "e")])

    assert ran == [["a", "b"]]  # the rest was never run
    # The writer is free for the next caller, and runs its command.
    assert writer.submit("f", None) == "F"
    assert ran[-1] == ["f"]


def test_a_failing_command_is_answered_and_the_batch_after_it_still_runs() -> None:
    def process(batch: list[Item]) -> list[Item]:
        if batch[0].command == "boom":
            raise RuntimeError("boom")
        for pending in batch:
            pending.future.set_result(pending.command)
        return []

    writer: GroupCommitWriter[str, None, str] = GroupCommitWriter(process, max_batch=1)
    futures: list[Future[str]] = writer.submit_many([("boom", None), ("ok", None)])
    with pytest.raises(RuntimeError, match="boom"):
        futures[0].result()
    assert futures[1].result() == "ok"
