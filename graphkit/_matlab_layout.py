"""A check of a MAT-file (version 5 to 7.2) layout before :func:`scipy.io.loadmat` reads it.

SciPy's compiled reader trusts the sizes written in the file: a damaged or truncated file can
make it read past its buffers and end the process (a segmentation fault, found by fuzzing
``graphkit.read_edgelist``; see SciPy issues 6072 and 8778). :func:`check_layout` walks the
file's data elements (MAT-File Format, MathWorks, 2024: a tag of type and byte count, data padded
to 8 bytes, variables compressed with zlib from version 7) and raises :class:`MatlabLayoutError`
naming the first element whose sizes do not fit: a tag running past its container, a numeric
array whose data count differs from its dimensions, a sparse array whose row indices or column
pointers are out of range. It reads no values except those of sparse index arrays.
"""

from __future__ import annotations

import zlib
from math import prod

import numpy as np

__all__ = ["MatlabLayoutError", "check_layout"]

_HEADER_BYTES = 128
_MI_MATRIX, _MI_COMPRESSED = 14, 15
# Data types of the elements, by their numbers in the format (miINT8 = 1, ..., miUTF32 = 18).
_ELEMENT_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
                   12: "i8", 13: "u8", 16: "u1", 17: "u2", 18: "u4"}
_KNOWN_TYPES = set(_ELEMENT_DTYPES) | {_MI_MATRIX, _MI_COMPRESSED}
_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE = 1, 2, 3, 4, 5
_NUMERIC_CLASSES = set(range(6, 16))
_COMPLEX_FLAG = 0x0800


class MatlabLayoutError(ValueError):
    """A MAT-file whose data elements do not fit the sizes they declare."""


def check_layout(data: bytes) -> None:
    """Raise :class:`MatlabLayoutError` unless every data element of the version 5 MAT-file
    ``data`` (its whole bytes) fits its container and its declared sizes."""
    if len(data) < _HEADER_BYTES:
        raise MatlabLayoutError(f"is truncated: {len(data)} bytes, shorter than the 128-byte header")
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise MatlabLayoutError("has a damaged header (no byte-order mark at bytes 126-127)")
    _Walker(order).elements(data, _HEADER_BYTES, len(data), top_level=True)


class _Walker:
    def __init__(self, order: str):
        self.order = order

    def tag(self, data: bytes, start: int, end: int) -> tuple[int, int, int, int]:
        """The element at ``start``: its type, the start and end of its data, and where the next
        element begins; its sizes checked against ``end``."""
        if end - start < 8:
            raise MatlabLayoutError(f"is truncated or damaged: {end - start} bytes at byte {start} "
                                    "cannot hold a data element's 8-byte tag")
        first, second = np.frombuffer(data, dtype=self.order + "u4", count=2, offset=start).tolist()
        if first >> 16:   # the small element format: type and size in 4 bytes, data in the next 4
            size = first >> 16
            if first & 0xFFFF not in _KNOWN_TYPES:
                raise MatlabLayoutError(f"is damaged: the small element at byte {start} has type {first & 0xFFFF}, "
                                        "which the format does not define")
            if size > 4:
                raise MatlabLayoutError(f"is damaged: the small element at byte {start} declares {size} bytes (at most 4)")
            return first & 0xFFFF, start + 4, start + 4 + size, start + 8
        if first not in _KNOWN_TYPES:
            raise MatlabLayoutError(f"is damaged: the element at byte {start} has type {first}, which the format does not define")
        if second > end - start - 8:
            raise MatlabLayoutError(f"is truncated or damaged: the element at byte {start} declares {second} bytes, "
                                    f"and its container has {end - start - 8} left")
        data_end = start + 8 + second
        return first, start + 8, data_end, min(end, data_end + (-second % 8))

    def elements(self, data: bytes, start: int, end: int, top_level: bool = False) -> None:
        while start < end:
            kind, begin, stop, following = self.tag(data, start, end)
            if kind == _MI_COMPRESSED:
                self.compressed(data[begin:stop], begin)
            elif kind == _MI_MATRIX:
                self.matrix(data, begin, stop)
            start = stop if top_level else following   # top-level elements are not padded

    def compressed(self, payload: bytes, offset: int) -> None:
        try:
            inner = zlib.decompress(payload)
        except zlib.error as exc:
            raise MatlabLayoutError(f"is damaged: the compressed variable at byte {offset} does not "
                                    f"decompress ({exc})") from exc
        self.elements(inner, 0, len(inner))

    def matrix(self, data: bytes, start: int, end: int) -> None:
        if start == end:
            return   # an empty variable
        parts = []
        while start < end:
            kind, begin, stop, start = self.tag(data, start, end)
            parts.append((kind, begin, stop))
        if len(parts) < 3:
            raise MatlabLayoutError(f"is damaged: the variable ending at byte {end} lacks its flags, "
                                    "dimensions or name")
        flags, dims = self.values(data, parts[0]), self.values(data, parts[1])
        if len(flags) < 2 or len(dims) < 2 or min(dims.tolist()) < 0:
            raise MatlabLayoutError(f"is damaged: the variable ending at byte {end} has damaged flags or dimensions")
        array_class, n_values, rest = int(flags[0]) & 0xFF, prod(dims.tolist()), parts[3:]
        n_parts = 1 + bool(int(flags[0]) & _COMPLEX_FLAG)   # a complex array stores its imaginary part after
        if array_class in _NUMERIC_CLASSES:
            if len(rest) < n_parts:
                raise MatlabLayoutError(f"is damaged: the array ending at byte {end} lacks its "
                                        f"{'imaginary part' if rest else 'values'}")
            for part in rest[:n_parts]:
                if len(self.values(data, part)) != n_values:
                    raise MatlabLayoutError(f"is damaged: the array ending at byte {end} holds "
                                            f"{len(self.values(data, part))} values for dimensions {dims.tolist()}")
        elif array_class == _SPARSE:
            self.sparse(data, rest, dims.tolist(), end, n_parts)
        elif array_class in (_CELL, _STRUCT, _OBJECT):
            for kind, begin, stop in rest:
                if kind == _MI_MATRIX:
                    self.matrix(data, begin, stop)

    def values(self, data: bytes, part: tuple[int, int, int]) -> np.ndarray:
        kind, begin, stop = part
        dtype = np.dtype(_ELEMENT_DTYPES.get(kind, "u1")).newbyteorder(self.order)
        if (stop - begin) % dtype.itemsize:
            raise MatlabLayoutError(f"is damaged: the element at byte {begin - 8} holds {stop - begin} bytes, "
                                    f"not a whole number of {dtype.itemsize}-byte values")
        return np.frombuffer(data, dtype=dtype, count=(stop - begin) // dtype.itemsize, offset=begin)

    def sparse(self, data: bytes, parts: list, dims: list, end: int, n_value_parts: int) -> None:
        if len(parts) < 2 + n_value_parts or len(dims) != 2:
            raise MatlabLayoutError(f"is damaged: the sparse array ending at byte {end} lacks its indices or values")
        rows, pointers, values = (self.values(data, part).astype(np.int64, copy=False) if index < 2
                                  else self.values(data, part) for index, part in enumerate(parts[:3]))
        n_rows, n_cols = dims
        stored = int(pointers[-1]) if len(pointers) else -1
        broken = (len(pointers) != n_cols + 1 or pointers[0] != 0 or np.any(np.diff(pointers) < 0)
                  or stored > min(len(rows), len(values))
                  or (stored > 0 and (rows[:stored].min() < 0 or rows[:stored].max() >= n_rows)))
        if broken:
            raise MatlabLayoutError(f"is damaged: the sparse array ending at byte {end} has row indices or "
                                    f"column pointers out of range for a {n_rows} x {n_cols} matrix")
