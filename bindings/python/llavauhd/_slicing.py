"""Slicing keyword arguments (``preresize_long_side``, ``max_slices``) to ``luhd_slice_params``."""
from __future__ import annotations

from typing import Optional

from ._lib import INT32_MAX, INT32_MIN, SliceParams, int_in_range, lib


def slice_params(preresize_long_side: Optional[int], max_slices: Optional[int]) -> SliceParams:
    """A ``luhd_slice_params`` from keyword arguments (None keeps the library default). Values
    outside int32 are refused here, naming the field, since ctypes would wrap them; the library
    checks the documented ranges (InvalidArgumentError)."""
    params: SliceParams = lib.luhd_slice_default_params()
    if preresize_long_side is not None:
        params.preresize_long_side = int_in_range(preresize_long_side, "preresize_long_side", INT32_MIN, INT32_MAX)
    if max_slices is not None:
        params.max_slices = int_in_range(max_slices, "max_slices", INT32_MIN, INT32_MAX)
    return params
