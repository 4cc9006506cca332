"""relay_exec's Ctrl-C handler, driven by real SIGINTs sent to this process."""

from __future__ import annotations

import os
import signal

import pytest

from fleet.ctrl_c import CtrlC


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # handled in the main thread before os.kill returns to Python code


def test_the_first_interrupt_raises_and_a_second_waits_until_the_cancellation_is_written() -> None:
    written = []
    with CtrlC() as handler:
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
        ctrl_c()  # lands while the first is still being handled: held, not raised
        with pytest.raises(KeyboardInterrupt):
            with handler.cancelling():
                written.append("cancelled")
        assert written == ["cancelled"], "the second Ctrl-C never skips the cancellation the first asked for"
        ctrl_c()  # a third is ignored
    assert handler.count == 3 and handler.raised == 2


def test_a_second_interrupt_after_the_cancellation_raises_at_once() -> None:
    with CtrlC() as handler:
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
        with handler.cancelling():
            pass
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()


def test_interrupts_while_held_are_raised_on_the_way_out_after_the_work_is_whole() -> None:
    done = []
    with CtrlC() as handler:
        with pytest.raises(KeyboardInterrupt):
            with handler.held():
                ctrl_c()
                done.append("queued")
        assert done == ["queued"]


def test_the_previous_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as handler:
        assert signal.getsignal(signal.SIGINT) is handler
    assert signal.getsignal(signal.SIGINT) is before
