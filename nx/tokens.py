"""How a token is shown to people, in the terminal and in the viewer alike.

Tokens are arbitrary web text. Characters that would vanish or rearrange a line are shown as
signs: newline ``↵``, tab ``⇥``, carriage return ``␍``; other control characters, zero-width
and bidirectional marks (U+200B-U+200F, U+202A-U+202E, U+2066-U+2069, U+FEFF, soft hyphen,
line and paragraph separators) as ``⟨U+XXXX⟩``. Imports nothing: ``nx sql`` uses it.
"""
from __future__ import annotations

_NAMED = {"\n": "↵", "\t": "⇥", "\r": "␍"}
_INVISIBLE = (0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
              0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF, 0x00AD, 0x2028, 0x2029)
_CONTROL = (*range(0x20), 0x7F, *range(0x80, 0xA0))

# character -> the sign shown instead of it
SIGNS: dict[str, str] = {chr(code): f"⟨U+{code:04X}⟩" for code in (*_CONTROL, *_INVISIBLE)}
SIGNS.update(_NAMED)
_TABLE = str.maketrans(SIGNS)


def sign_of(char: str) -> str | None:
    """The sign shown for one character, or None if it is shown as itself."""
    return SIGNS.get(char)


def visible_text(text: str) -> str:
    """The text with every odd character replaced by its sign (plain text, not escaped)."""
    return text.translate(_TABLE)
