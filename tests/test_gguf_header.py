"""The GGUF header scan that finds our metadata keys without ``gguf.GGUFReader``'s full parse:
it agrees with that reader on files ``gguf``'s writer made and on SmolLM2's real file, and
a file that is no GGUF file, or is cut short anywhere, is one clear error."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from finetune.export._gguf_header import GGUFHeaderError, string_fields

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")


def _every_value_type(path: Path) -> Path:
    """A GGUF file holding a value of each type, arrays of scalars, of strings and of arrays,
    between the string fields, and one tensor after them."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint8("u8", 7)
    writer.add_int16("i16", -3)
    writer.add_uint32("u32", 1 << 31)
    writer.add_float32("f32", 0.5)
    writer.add_bool("flag", True)
    writer.add_uint64("u64", 1 << 40)
    writer.add_float64("f64", 2.25)
    writer.add_string("first", "une chaîne")
    writer.add_array("tokens", ["<s>", "</s>", "héllo", ""])
    writer.add_array("scores", [0.5, -1.0, 2.0])
    writer.add_array("nested", [[1, 2], [3, 4, 5]])
    writer.add_string("last", "{% for m in messages %}{{ m.content }}{% endfor %}")
    writer.add_tensor("weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _as_gguf_reads_them(path: Path) -> dict[str, str]:
    """Every string field of the file, as ``gguf``'s own reader reads it."""
    fields = gguf.GGUFReader(str(path)).fields
    strings = gguf.GGUFValueType.STRING
    return {key: field.contents() for key, field in fields.items() if field.types == [strings]}


def test_the_scan_reads_the_string_fields_gguf_reads(tmp_path: Path) -> None:
    path = _every_value_type(tmp_path / "all.gguf")
    expected = _as_gguf_reads_them(path)
    assert {"first", "last", "general.architecture"} <= expected.keys()
    assert string_fields(path, *expected) == expected
    # a key it does not hold, or holds as a number or an array, is None
    assert string_fields(path, "absent", "u32", "tokens") == dict.fromkeys(
        ["absent", "u32", "tokens"]
    )


def test_the_scan_agrees_with_gguf_on_smollm2s_file(smollm2: str) -> None:
    """A real file of 49,152 vocabulary entries, its merges and its chat template."""
    expected = _as_gguf_reads_them(Path(smollm2))
    assert expected["tokenizer.ggml.pre"] == "smollm"
    assert string_fields(smollm2, *expected) == expected


def test_a_file_that_is_no_gguf_or_is_cut_short_is_one_error(tmp_path: Path) -> None:
    whole = _every_value_type(tmp_path / "all.gguf").read_bytes()
    header_end = whole.index(b"weight") - 8  # the tensor infos (name's length, name) follow
    for end in range(0, header_end, 7):
        cut = tmp_path / "cut.gguf"
        cut.write_bytes(whole[:end])
        with pytest.raises(GGUFHeaderError):
            string_fields(cut, "last")
    other = tmp_path / "model.safetensors.gguf"
    other.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(GGUFHeaderError, match="does not start with GGUF's magic bytes"):
        string_fields(other, "last")
    # a length no header holds (a corrupt file) is refused, never allocated
    huge = b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 62)
    other.write_bytes(huge)
    with pytest.raises(GGUFHeaderError, match=r"a string of \d+ bytes"):
        string_fields(other, "last")
    with pytest.raises(FileNotFoundError):
        string_fields(tmp_path / "absent.gguf", "last")
