"""Escape sequences of HL7 v2.5.1 §2.7: unescape() for every sequence, escape() → unescape() round trips."""

from __future__ import annotations

import random

import pytest

from mappers.hl7v2.escape import escape, unescape
from mappers.hl7v2.model import Delimiters
from mappers.hl7v2.parse import parse_message

D = Delimiters()  # | ^ ~ \ &
D_TRUNC = Delimiters(truncation="#")  # v2.7+: MSH-2 = ^~\&#
D_ODD = Delimiters(";", "#", "@", "!", "$", "*")  # non-default set, escape char '!'


# --- §2.7.1 delimiter escapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seq", "expected"), [
    ("\\F\\", "|"),
    ("\\S\\", "^"),
    ("\\T\\", "&"),
    ("\\R\\", "~"),
    ("\\E\\", "\\"),
])
def test_delimiter_escapes(seq: str, expected: str) -> None:
    assert unescape(f"a{seq}b", D) == f"a{expected}b"


def test_delimiter_escapes_follow_the_message_delimiters() -> None:
    assert unescape("x!F!y!S!z!T!w!R!v!E!u", D_ODD) == "x;y#z$w@v!u"
    # with '!' as escape, a backslash sequence is plain text
    assert unescape("\\F\\", D_ODD) == "\\F\\"


def test_truncation_escape_with_truncation_char_in_msh2() -> None:
    assert unescape("5\\P\\", D_TRUNC) == "5#"


def test_truncation_escape_without_truncation_char_is_kept() -> None:
    # before v2.7 (MSH-2 of four characters) \P\ has no meaning: keep it rather than lose text
    assert unescape("5\\P\\", D) == "5\\P\\"


def test_truncation_escape_via_parsed_message() -> None:
    with_t = parse_message("MSH|^~\\&#|A|B|||||ORU^R01|1|P|2.7\rOBX|1|ST|c||v\\P\\w\r")
    without = parse_message("MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1\rOBX|1|ST|c||v\\P\\w\r")
    assert with_t.delims.truncation == "#"
    assert with_t.msh.get(2) == "^~\\&#"
    assert with_t.first("OBX").get(5) == "v#w"
    assert without.delims.truncation == ""
    assert without.first("OBX").get(5) == "v\\P\\w"


# --- §2.7.2 / 2.7.3 highlighting and hexadecimal --------------------------------------------------------------------


def test_highlight_on_off_dropped() -> None:
    assert unescape("normal \\H\\bold\\N\\ normal", D) == "normal bold normal"


def test_hex_single_byte() -> None:
    assert unescape("A\\X41\\B", D) == "AAB"
    assert unescape("\\X0D0A\\", D) == "\r\n"
    assert unescape("\\Xfc\\", D, "latin-1") == "ü"


def test_hex_multibyte_utf8() -> None:
    assert unescape("\\XE5BCA0E4B889\\", D, "utf-8") == "张三"
    assert unescape("M\\XC3BC\\ller", D, "utf-8") == "Müller"


def test_hex_gb18030_decoded_with_message_encoding() -> None:
    assert "张三".encode("gb18030").hex().upper() == "D5C5C8FD"
    assert unescape("\\XD5C5C8FD\\", D, "gb18030") == "张三"
    # the same bytes are not UTF-8: never raises, falls back to a byte-per-char reading
    assert unescape("\\XD5C5C8FD\\", D, "utf-8") == "\xd5\xc5\xc8\xfd"


def test_hex_uses_the_segment_encoding_from_msh18() -> None:
    gb = "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1||||||GB 18030-2000\rOBX|1|ST|c||\\XD5C5C8FD\\\r"
    utf = "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1||||||UNICODE UTF-8\rOBX|1|ST|c||\\XE5BCA0E4B889\\\r"
    assert parse_message(gb.encode("ascii")).first("OBX").get(5) == "张三"
    assert parse_message(utf.encode("ascii")).first("OBX").get(5) == "张三"


def test_hex_malformed_is_kept() -> None:
    assert unescape("\\XZZ\\", D) == "\\XZZ\\"
    assert unescape("\\X4\\", D) == "\\X4\\"  # odd number of digits
    assert unescape("\\X\\", D) == ""  # no bytes at all


# --- §2.7.4 / 2.7.5 character set switches and locally defined escapes ----------------------------------------------


def test_single_byte_charset_switch_dropped() -> None:
    assert unescape("a\\C2842\\b", D) == "ab"  # ESC ( B: ISO-IR6 G0


def test_multi_byte_charset_switch_dropped() -> None:
    assert unescape("a\\M2442\\b", D) == "ab"  # ESC $ B: ISO-IR87
    assert unescape("a\\M242842\\b", D) == "ab"


def test_charset_switch_with_wrong_length_is_kept() -> None:
    # \Cxxyy\ has exactly four hex digits, \Mxxyy[zz]\ four or six
    assert unescape("\\C123456\\", D) == "\\C123456\\"
    assert unescape("\\M12\\", D) == "\\M12\\"
    assert unescape("\\M12345\\", D) == "\\M12345\\"
    assert unescape("\\C12G4\\", D) == "\\C12G4\\"


def test_locally_defined_z_escape_kept_literally() -> None:
    assert unescape("a\\Zcustom\\b", D) == "a\\Zcustom\\b"
    assert unescape("\\Z\\", D) == "\\Z\\"


# --- §2.7.6 formatted text (FT) commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(("seq", "expected"), [
    ("\\.br\\", "\n"),
    ("\\.sp\\", "\n"),
    ("\\.sp 2\\", "\n\n"),
    ("\\.sp +3\\", "\n\n\n"),
    ("\\.sk\\", " "),
    ("\\.sk 3\\", "   "),
    ("\\.in\\", ""),
    ("\\.in +4\\", ""),
    ("\\.ti -2\\", ""),
    ("\\.fi\\", ""),
    ("\\.nf\\", ""),
    ("\\.ce\\", "\n"),
])
def test_formatting_commands(seq: str, expected: str) -> None:
    assert unescape(f"L1{seq}L2", D) == f"L1{expected}L2"


def test_unknown_formatting_command_kept() -> None:
    assert unescape("a\\.xx 3\\b", D) == "a\\.xx 3\\b"


@pytest.mark.parametrize("arg", ["²", "+-3", "3x", "٣"])
def test_formatting_count_that_is_not_an_ascii_number_does_not_crash(arg: str) -> None:
    # regression: int() raised ValueError on '²' / '+-3' (str.isdigit() accepts them)
    assert unescape(f"\\.sp {arg}\\", D) == "\n"
    assert unescape(f"\\.sk {arg}\\", D) == " "


def test_formatting_count_is_capped() -> None:
    # regression: \.sp 10^12\ tried to build a terabyte of newlines from one untrusted field
    assert unescape("\\.sp 1000000000000\\", D) == "\n" * 100
    assert unescape("\\.sk " + "9" * 5000 + "\\", D) == " " * 100
    assert unescape("\\.sk 100\\", D) == " " * 100


# --- what is not an escape -----------------------------------------------------------------------------------------


def test_text_without_escape_char_unchanged() -> None:
    s = "plain ^ text | with & delimiters ~ as written"
    assert unescape(s, D) is s


@pytest.mark.parametrize("text", ["\\Q\\", "a\\XYZ 12\\b", "\\\\", "x\\.zz\\y", "\\HX\\"])
def test_unknown_sequences_kept_as_is(text: str) -> None:
    assert unescape(text, D) == text


@pytest.mark.parametrize("text", ["\\", "abc\\", "\\abc", "a\\F\\b\\c"])
def test_lone_escape_char_kept(text: str) -> None:
    expected = text.replace("\\F\\", "|")
    assert unescape(text, D) == expected


def test_escapes_are_expanded_after_splitting() -> None:
    msg = parse_message("MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1\r"
                        "OBX|1|FT|c||a\\S\\b^c\\T\\d&e\\R\\f~g\\F\\h\\E\\i\\.br\\j\r")
    obx = msg.first("OBX")
    assert obx.repetitions(5) == ["a\\S\\b^c\\T\\d&e\\R\\f", "g\\F\\h\\E\\i\\.br\\j"]
    assert obx.get(5, 1) == "a^b"
    assert obx.get(5, 2, 1) == "c&d"
    assert obx.get(5, 2, 2) == "e~f"
    assert obx.get(5, 1, 1, 2) == "g|h\\i\nj"
    assert obx.components(5) == ["a^b", "c&d&e~f"]
    assert obx.text(5, 2) == "g|h\\i\nj"


# --- escape() → unescape() -----------------------------------------------------------------------------------------

HAND_PICKED = [
    "",
    "plain",
    "|",
    "^~\\&",
    "a|b^c~d\\e&f",
    "\\F\\ is how you write a pipe",
    "\\E\\\\E\\",
    "line 1\nline 2\n\nline 4\n",
    "\\.br\\ literally",
    "ends with escape\\",
    "\\X41\\ not hex",
    "Müller 张三 億亅乛乗亊",
    "#truncated#",
    "  leading and trailing  ",
]


@pytest.mark.parametrize("d", [D, D_TRUNC, D_ODD], ids=["default", "truncation", "odd"])
@pytest.mark.parametrize("text", HAND_PICKED)
def test_round_trip_hand_picked(text: str, d: Delimiters) -> None:
    escaped = escape(text, d)
    for ch in (d.field, d.component, d.repetition, d.subcomponent, "\r", "\n", *d.truncation):
        assert ch not in escaped, (ch, escaped)
    assert unescape(escaped, d) == text


def _generated(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = [*"|^~\\&#;@!$*\n FSTREPXHNCMZ.br.sp 0123456789abcü张億", "\\.br\\", "\\F\\", "\\X41\\"]
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(count)]


@pytest.mark.parametrize("d", [D, D_TRUNC, D_ODD], ids=["default", "truncation", "odd"])
def test_round_trip_generated(d: Delimiters) -> None:
    texts = _generated(2511, 2000)
    assert len(set(texts)) > 1900
    for text in texts:
        escaped = escape(text, d)
        assert d.field not in escaped and d.component not in escaped and "\n" not in escaped, text
        assert unescape(escaped, d) == text, text


def test_round_trip_through_a_parsed_message() -> None:
    """An escaped value dropped into a message comes back unchanged from Segment.get and Segment.text."""
    texts = HAND_PICKED + _generated(7, 300)
    body = "\r".join(f"OBX|{i}|FT|c||{escape(t, D)}" for i, t in enumerate(texts, 1))
    msg = parse_message(f"MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1\r{body}\r")
    obx = msg.all("OBX")
    assert len(obx) == len(texts)
    for seg, text in zip(obx, texts, strict=True):
        assert seg.get(5) == text
        assert seg.text(5) == text


def test_escape_normalises_carriage_returns_to_line_breaks() -> None:
    # CR is the segment terminator; escape() writes every line break as \.br\, so CR and CRLF come back as LF
    assert escape("a\r\nb\rc\nd", D) == "a\\.br\\b\\.br\\c\\.br\\d"
    assert unescape(escape("a\r\nb\rc", D), D) == "a\nb\nc"


def test_escape_exact_output() -> None:
    assert escape("a|b^c&d~e\\f", D) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert escape("5#", D_TRUNC) == "5\\P\\"
    assert escape("5#", D) == "5#"
    assert escape("x;y#z", D_ODD) == "x!F!y!S!z"
