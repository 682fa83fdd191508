"""User code for tests/test_ml_contract.py's DAGs: what ML code returns, as the contract takes it.

numbers.Integral and numbers.Real are what numpy registers its integer and floating
scalars with; the two classes here register the same way, so they exercise that
conversion with any Integral or Real, and NUMPY_SCALARS with numpy's own (numpy comes
with the sklearn extra, pinned in constraints.txt).
"""

from __future__ import annotations

import json
import numbers
from decimal import Decimal
from fractions import Fraction

import numpy as np


class IntegerScalar:
    """Like numpy.int8..int64 and uint8..uint64: an Integral that is not an int."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __int__(self) -> int:
        return self.value


class FloatScalar:
    """Like numpy.float16..float64: a Real that is not a float."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


numbers.Integral.register(IntegerScalar)
numbers.Real.register(FloatScalar)

# A value of each numpy scalar type, each exact in its type: the floats just below the
# integer stand-in's 3 (so that stays the best), the integers at their type's lowest
# value where that is below 3 (so a conversion through float would show).
NUMPY_SCALARS = {
    "np_float16": np.float16(2.5),
    "np_float32": np.float32(2.75),
    "np_float64": np.float64(2.875),
    "np_int8": np.int8(-(2**7)),
    "np_int16": np.int16(-(2**15)),
    "np_int32": np.int32(-(2**31)),
    "np_int64": np.int64(-(2**63)),
    "np_uint8": np.uint8(0),
    "np_uint16": np.uint16(1),
    "np_uint32": np.uint32(2),
    "np_uint64": np.uint64(2),
}


def prepare() -> int:
    return 10


def train_listed(data: int, factor: int) -> dict:
    return {"score": data * factor / 100, "artifact": f"/models/{factor}-{data}.pkl"}


def explode(data: int) -> float:
    raise ValueError(f"out of memory at {data} rows")


def train_typed(kind: str, data: int):
    if kind in NUMPY_SCALARS:
        return NUMPY_SCALARS[kind]
    return {
        "decimal": Decimal(data) / Decimal(40),
        "fraction": Fraction(data, 25),
        "integer_scalar": IntegerScalar(data - 7),
        "float_scalar": FloatScalar(data / 8),
        "int": 2,
    }[kind]


def train_seeded(seed: int, data: int) -> float:
    if seed == 3:
        raise ValueError(f"seed {seed} diverged")
    return seed * data / 100


def train_count(data: int) -> float:
    return data / 100


def publish(record: str, task_id: str, artifact=None, metrics=None, params=None):
    """Records what it received: the test reads the file (its absence: not called)."""
    received = {"task_id": task_id, "artifact": artifact, "metrics": metrics}
    with open(record, "w") as file:
        json.dump({**received, "params": params}, file)
