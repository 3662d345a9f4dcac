"""run.checks.validate owns every start-up config check, the ``shift`` block's included."""

from __future__ import annotations

import pytest

from headlab.errors import ConfigValueError, RunError
from headlab.run.checks import validate
from tests.conftest import compose_train


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["shift.level=1.5"], "shift.level must lie in (0, 1), got 1.5"),
        (["shift.samples=5"], "shift.samples must be a whole number >= 10, got 5"),
        (["shift.enabled=maybe"], "shift.enabled must be true or false, got 'maybe'"),
        (
            ["shift.methods=[temperature,platt]"],
            "shift.methods: unknown 'platt'; known: temperature, vector, matrix, isotonic",
        ),
        (
            ["shift.rotation=[0,400]", "shift.translation=[3.5]"],
            "shift.rotation: angles lie in 0..360 degrees, got 400; "
            "shift.translation: whole pixels in 0..14, got 3.5",
        ),
    ],
)
def test_the_shift_block_is_checked_by_validate_in_one_line(overrides, message):
    with pytest.raises(ConfigValueError) as err:
        validate(compose_train(overrides))
    assert isinstance(err.value, RunError)
    assert str(err.value) == f"Invalid config: {message}"


def test_shift_none_and_every_shift_preset_pass():
    for preset in ("none", "default", "full"):
        validate(compose_train([f"shift={preset}"]))
