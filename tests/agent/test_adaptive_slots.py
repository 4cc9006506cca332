"""The default slot count: grows while short commands queue, never for long ones, back to the floor when idle."""

from relay_agent.adaptive import SHORT_MS, AdaptiveSlots
from relay_agent.slots import RunningCommand, Slots


def adaptive(floor: int = 4, ceiling: int = 32) -> AdaptiveSlots:
    return AdaptiveSlots(Slots(floor), floor, ceiling)


def test_full_claims_of_short_commands_double_the_slots_up_to_the_ceiling() -> None:
    limit = adaptive()
    limit.finished(2)
    sizes = []
    for _ in range(5):
        limit.claimed(asked=limit.slots.free(), got=limit.slots.free())
        sizes.append(limit.slots.size)
    assert sizes == [8, 16, 32, 32, 32]


def test_no_growth_before_any_command_finished_or_when_the_claim_was_not_full() -> None:
    limit = adaptive()
    limit.claimed(asked=4, got=4)
    assert limit.slots.size == 4
    limit.finished(1)
    limit.claimed(asked=4, got=3)
    assert limit.slots.size == 4


def test_long_commands_halve_the_slots_down_to_the_floor() -> None:
    limit = adaptive()
    limit.finished(1)
    for _ in range(3):
        limit.claimed(asked=limit.slots.free(), got=limit.slots.free())
    assert limit.slots.size == 32
    for _ in range(32):
        limit.finished(SHORT_MS + 1)
    limit.claimed(asked=32, got=32)
    assert limit.slots.size == 16
    for _ in range(5):
        limit.claimed(asked=16, got=16)
    assert limit.slots.size == 4


def test_an_empty_long_poll_returns_to_the_floor() -> None:
    limit = adaptive()
    limit.finished(1)
    limit.claimed(asked=4, got=4)
    limit.claimed(asked=8, got=8)
    assert limit.slots.size == 16
    limit.claimed(asked=16, got=0)
    assert limit.slots.size == 4


def test_shrinking_below_the_busy_count_frees_nothing_until_commands_end() -> None:
    slots = Slots(8)
    running = [RunningCommand(str(i), 1) for i in range(6)]
    for command in running:
        slots.take(command)
    slots.resize(4)
    assert slots.free() == 0
    for command in running[:3]:
        slots.release(command)
    assert slots.free() == 1
