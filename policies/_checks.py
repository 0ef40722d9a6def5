"""Argument and state checks shared by all policies; every error names its field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def check_seed(seed: Any) -> int | None:
    """Accept ``None`` or a non-negative integer."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer or null, got {seed!r}")
    return int(seed)


def check_finite_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if low is not None and (number < low or (number == low and not low_inclusive)):
        bound = "at least" if low_inclusive else "greater than"
        raise ValueError(f"{name}: must be {bound} {low}, got {value!r}")
    if high is not None and (number > high or (number == high and not high_inclusive)):
        bound = "at most" if high_inclusive else "less than"
        raise ValueError(f"{name}: must be {bound} {high}, got {value!r}")
    return number


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value!r}")
    return int(value)


def check_arm_index(arm: Any, n_arms: int, name: str = "arm") -> int:
    """Return a valid arm index, or raise ``ValueError`` naming ``name``."""
    index = check_int(name, arm, minimum=0)
    if index >= n_arms:
        raise ValueError(f"{name}: must be below n_arms={n_arms}, got {arm!r}")
    return index


def state_int(state: Mapping[str, Any], key: str, *, minimum: int) -> int:
    """Read an integer field of a saved state."""
    if key not in state:
        raise ValueError(f"{key}: missing from state")
    return check_int(key, state[key], minimum=minimum)


def state_bool_array(state: Mapping[str, Any], key: str, length: int) -> np.ndarray:
    """Read a list of booleans of a known length from a saved state."""
    raw = state.get(key)
    if not isinstance(raw, list) or len(raw) != length:
        raise ValueError(f"{key}: must be a list of {length} booleans")
    if not all(isinstance(item, bool) for item in raw):
        raise ValueError(f"{key}: must contain only booleans")
    return np.array(raw, dtype=bool)


def state_array(
    state: Mapping[str, Any],
    key: str,
    length: int | None,
    *,
    integer: bool = False,
    nonnegative: bool = True,
) -> np.ndarray:
    """Read a numeric list from a saved state: right length, finite, sign-checked."""
    raw = state.get(key)
    if not isinstance(raw, list):
        raise ValueError(f"{key}: must be a list")
    if length is not None and len(raw) != length:
        raise ValueError(f"{key}: must have {length} entries, got {len(raw)}")
    if any(isinstance(item, bool) or not isinstance(item, (int, float)) for item in raw):
        raise ValueError(f"{key}: must contain only numbers")
    if integer:
        if not all(isinstance(item, int) for item in raw):
            raise ValueError(f"{key}: must contain only integers")
        array = np.array(raw, dtype=np.int64)
    else:
        array = np.array(raw, dtype=np.float64)
        if not np.isfinite(array).all():
            raise ValueError(f"{key}: must be finite (no NaN or infinity)")
    if nonnegative and (array < 0).any():
        raise ValueError(f"{key}: must not be negative")
    return array
