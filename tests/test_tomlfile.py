"""TomlDocument: line numbers for every key path, and one-line errors naming file, line and key."""

from __future__ import annotations

import string as string_module
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.errors import ConfigError
from foundation.tomlfile import TomlDocument, format_path
from tests.tomlwriter import dumps_with_lines

NESTED = """\
# a comment
id = "a"  # trailing comment
"quoted.key" = 1
a.b . c = 2
title = '''x
y = 3
'''
s = \"\"\"a\\\\\"\"\"
s3 = 'x\"\"\"'
[[turns]]
text = "t0"
[[turns]]
text = \"\"\"
foo = bar
[[turns]]
\"\"\"
meta = { k = 1, "q" = [1, {z = 2}] }
[[turns.alts]]
x = 1
[turns.extra]
y = 2
[[turns]]
text = "t2"
arr = [
  "a", # c
  { text = "b" },
  [1,2],
]
when = 1979-05-27 07:32:00Z
"""


def parse(text: str, name: str = "f.toml") -> TomlDocument:
    return TomlDocument.parse(Path(name), text)


def test_line_of_tables_arrays_and_strings() -> None:
    document = parse(NESTED)
    expected = {
        ("id",): 2,
        ("quoted.key",): 3,
        ("a", "b", "c"): 4,
        ("title",): 5,
        ("s",): 8,
        ("s3",): 9,
        ("turns", 0): 10,
        ("turns", 0, "text"): 11,
        ("turns", 1, "text"): 13,
        # the "[[turns]]" inside the multi-line string above is text, not a header
        ("turns", 1, "meta", "q", 1, "z"): 17,
        ("turns", 1, "alts", 0, "x"): 19,
        ("turns", 1, "extra", "y"): 21,
        ("turns", 2): 22,
        ("turns", 2, "text"): 23,
        ("turns", 2, "arr", 0): 25,
        ("turns", 2, "arr", 1, "text"): 26,
        ("turns", 2, "arr", 2): 27,
        ("turns", 2, "when"): 29,
    }
    assert {path: document.line_of(path) for path in expected} == expected
    assert document.data["turns"][1]["text"] == "foo = bar\n[[turns]]\n"


def test_line_of_falls_back_to_the_enclosing_key() -> None:
    document = parse('id = "a"\nturns = [\n  { text = "x" },\n]\n')
    assert document.line_of(("turns", 0, "missing")) == 3
    assert document.line_of(("nothing",)) is None


def test_unicode_line_separators_inside_strings_do_not_shift_lines() -> None:
    text = 'a = "one\u2028two\x85three"\nb = 2\n# \u2029 in a comment\nc = 3\n'
    document = parse(text)
    assert document.line_of(("b",)) == 2
    assert document.line_of(("c",)) == 4


def test_syntax_error_names_line_and_full_key_path() -> None:
    text = 'id = "x"\n\n[[turns]]\ntext = "a"\n\n[[turns]]\ntext = "unterminated\n'
    with pytest.raises(ConfigError) as caught:
        parse(text, "bad.toml")
    error = caught.value
    assert (error.path, error.line, error.key) == (Path("bad.toml"), 7, "turns[1].text")
    assert (
        str(error)
        == "bad.toml:7: turns[1].text: TOML syntax error: a string is not closed on this line"
    )


def test_unclosed_multiline_string_points_where_it_opens() -> None:
    text = 'id = "x"\nsystem = """\nline one\nline two\n'
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert (caught.value.line, caught.value.key) == (2, "system")
    assert "never closed" in caught.value.message


def test_end_of_document_error_names_the_last_written_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('id = "x"\ntags = [\n\n')
    assert caught.value.line == 2


def test_duplicate_key_is_a_syntax_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('id = "a"\ntitle = "t"\nid = "b"\n')
    assert (caught.value.line, caught.value.key) == (3, "id")


def test_load_reports_missing_file_directory_and_bad_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        TomlDocument.load(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        TomlDocument.load(tmp_path)
    bad = tmp_path / "sjis.toml"
    bad.write_bytes(b'id = "a"\ntitle = "' + "アニメ".encode("shift_jis") + b'"\n')
    with pytest.raises(ConfigError) as caught:
        TomlDocument.load(bad)
    assert caught.value.line == 2
    assert "UTF-8" in caught.value.message


def test_load_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + 'id = "アニメ"\n'.encode())
    document = TomlDocument.load(path)
    assert document.data == {"id": "アニメ"}
    assert document.line_of(("id",)) == 1


def test_take_checks_types_and_reports_missing_top_level_key_at_line_one() -> None:
    document = parse('ratio = true\ncount = 3\nname = "  "\n')
    with pytest.raises(ConfigError) as caught:
        document.take(document.data, (), "ratio", float)
    assert caught.value.line == 1
    assert caught.value.message == "expected a number, got true"
    assert document.take(document.data, (), "count", float) == 3.0
    with pytest.raises(ConfigError, match="must not be empty"):
        document.take(document.data, (), "name", str, non_empty=True)
    with pytest.raises(ConfigError) as missing:
        document.take(document.data, (), "id", str)
    assert (missing.value.line, missing.value.key) == (1, "id")


def test_take_list_names_the_bad_element() -> None:
    document = parse('tags = [\n  "a",\n  3,\n]\n')
    with pytest.raises(ConfigError) as caught:
        document.take_list(document.data, (), "tags", str)
    assert (caught.value.line, caught.value.key) == (3, "tags[1]")
    assert document.take_list({}, (), "absent", str) == []


def test_reject_unknown_suggests_the_nearest_key() -> None:
    document = parse('id = "a"\nsytem = "x"\n')
    with pytest.raises(ConfigError) as caught:
        document.reject_unknown(document.data, (), ["id", "system"])
    assert (caught.value.line, caught.value.key) == (2, "sytem")
    assert "did you mean 'system'?" in caught.value.message


def test_format_path() -> None:
    assert format_path(("turns", 2, "text")) == "turns[2].text"
    assert format_path(()) == ""


# -- property: the scanner's line numbers agree with a writer that knows where it wrote ---------

_KEYS = st.one_of(
    st.text(alphabet=string_module.ascii_letters + "_-", min_size=1, max_size=6),
    st.sampled_from(["text", "id", "ターン", "a.b", "with space", 'q"uote', "1"]),
)
_TEXT = st.text(
    alphabet=st.characters(codec="utf-8"),  # any character a UTF-8 file can hold
    max_size=30,
)
_SCALARS = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.lists(_TEXT, max_size=3),
)


def _tables(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    values: st.SearchStrategy[Any] = _SCALARS
    if depth > 0:
        inner = _tables(depth - 1)
        values = st.one_of(_SCALARS, inner, st.lists(inner, min_size=1, max_size=3))
    return st.dictionaries(_KEYS, values, max_size=4)


@settings(max_examples=150, deadline=None)
@given(_tables(2))
def test_line_index_matches_where_a_writer_put_each_key(data: dict[str, Any]) -> None:
    text, written = dumps_with_lines(data)
    document = parse(text)
    assert document.data == data
    for path, line in written.items():
        assert document.line_of(path) == line, (path, text)
