"""Byte-level mutation of valid input files, shared by the fuzz tests of the readers and of the
import commands (each draws its own edits with Hypothesis)."""

from __future__ import annotations


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (kind, position, bytes) edits: 0 replace, 1 insert, 2 delete, 3 truncate."""
    out = bytearray(data)
    for kind, pos, chunk in edits:
        if not out:
            out.extend(chunk)
            continue
        i = pos % len(out)
        if kind == 0:
            out[i : i + len(chunk)] = chunk
        elif kind == 1:
            out[i:i] = chunk
        elif kind == 2:
            del out[i : i + max(len(chunk), 1)]
        else:
            del out[i:]
    return bytes(out)
