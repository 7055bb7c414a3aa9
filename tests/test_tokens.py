"""Odd characters in tokens are shown as the same signs in the terminal and the viewer."""
from nx.tokens import sign_of, visible_text


def test_whitespace_controls_and_invisible_marks_become_signs():
    assert visible_text("a\nb\tc\rd") == "a↵b⇥c␍d"
    assert visible_text("\u200f\u202eabc\x00") == "⟨U+200F⟩⟨U+202E⟩abc⟨U+0000⟩"


def test_ordinary_text_is_shown_as_itself():
    for text in (" Canada", "café 🍁", "\ufffd", "<script>", "שלום"):
        assert visible_text(text) == text
    assert sign_of("a") is None and sign_of("\n") == "↵"
