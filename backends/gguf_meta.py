"""Read a GGUF file's metadata (architecture, quantization, layers, chat template) without
loading its weights, so ``kurabe models`` and ``kurabe prompt`` answer in a blink; and the facts
read from it that llama.cpp and ``kurabe models`` both state: the quantization's name
(:func:`quantization_name`) and how many layers go to the GPU (:func:`offloaded_layer_count`).

Only the key/value header is read; arrays (the vocabulary) are skipped, not decoded.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_STRING = 8
_ARRAY = 9

GGUF_MAGIC = b"GGUF"
"""The first four bytes of every GGUF file."""
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 30: "BF16",
}  # fmt: skip
"""``general.file_type`` → the quantization's name, as llama.cpp prints it."""


class GGUFMetadataError(ValueError):
    """The file is not a readable GGUF."""


def _read(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise GGUFMetadataError("truncated GGUF header")
    return data


def _read_string(handle: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _read(handle, 8))
    if length > 1 << 26:
        raise GGUFMetadataError("implausible string length in GGUF header")
    return _read(handle, length).decode("utf-8", errors="replace")


def _read_value(handle: BinaryIO, value_type: int) -> Any:
    if value_type in _SCALARS:
        fmt = _SCALARS[value_type]
        return struct.unpack(fmt, _read(handle, struct.calcsize(fmt)))[0]
    if value_type == _STRING:
        return _read_string(handle)
    if value_type == _ARRAY:
        item_type, count = struct.unpack("<IQ", _read(handle, 12))
        if item_type in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        elif item_type == _STRING:
            for _ in range(count):
                (length,) = struct.unpack("<Q", _read(handle, 8))
                handle.seek(length, 1)
        else:
            raise GGUFMetadataError(f"unsupported array type {item_type}")
        return f"<array of {count}>"
    raise GGUFMetadataError(f"unknown value type {value_type}")


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The file's key/value metadata; arrays appear as ``"<array of N>"``."""
    with path.open("rb") as handle:
        if _read(handle, 4) != GGUF_MAGIC:
            raise GGUFMetadataError(f"not a GGUF file: {path.name}")
        version, _tensors, kv_count = struct.unpack("<IQQ", _read(handle, 20))
        if version < 2:
            raise GGUFMetadataError(f"GGUF version {version} is too old")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = _read_string(handle)
            (value_type,) = struct.unpack("<I", _read(handle, 4))
            metadata[key] = _read_value(handle, value_type)
    return metadata


def block_count(metadata: dict[str, Any]) -> int | None:
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.block_count")
    return int(value) if isinstance(value, int) else None


def quantization_name(file_type: object) -> str:
    """A GGUF's ``general.file_type`` as llama.cpp names it (``Q4_K_M`` …), ``?`` if absent."""
    try:
        code = int(str(file_type))
    except ValueError:
        return "?"
    return FILE_TYPES.get(code, f"type {code}")


def offloaded_layer_count(n_layers: int, requested: int, supported: bool) -> int:
    """Layers llama.cpp puts on the GPU: the repeating layers plus the output layer, at most;
    ``requested = -1`` means all of them; none where the build has no GPU offload."""
    if not supported:
        return 0
    offloadable = n_layers + 1
    return offloadable if requested < 0 else min(requested, offloadable)
