"""Text folded for comparison: how titles are searched and tags are told apart.

Case-insensitive and accent-insensitive: "Café" and "CAFE" fold to the same text, so a title
search for "cafe" finds both and the tags "Work" and "work" are one tag.
"""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return unicodedata.normalize("NFC", stripped).casefold()
