"""How far a deadline may be: part of the definition language (`working_days` 0–1000, `working_hours` 0–8500,
as the workflow schema says), checked on a constant when a scheme is loaded and on a formula's value when a
case starts its clock. Pure: no Flask, no database."""

from __future__ import annotations

from typing import Any

# A deadline further away than this is a mistake in a formula, not a time limit (about four years of work).
MAX_DEADLINE = {"days": 1000.0, "hours": 8500.0}


class DeadlineError(ValueError):
    """A deadline formula that gives no usable amount: the message says why, for the case and the log."""


def checked_amount(unit: str, value: Any) -> float:
    """The working days or hours a formula gave, or DeadlineError: a number, not negative, not absurd."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DeadlineError(f"the formula gives {'text' if isinstance(value, str) else 'no number'} "
                            f"({value!r:.40}), not a number of working {unit}")
    if value != value or value < 0:
        raise DeadlineError(f"the formula gives {value}: working {unit} cannot be negative")
    if value > MAX_DEADLINE[unit]:
        raise DeadlineError(f"the formula gives {value} working {unit}: more than {MAX_DEADLINE[unit]:g}")
    return float(value)
