"""Why a JWT signing secret is too weak to use, or ``None`` when it looks like real randomness.

The secret signs every access token: whoever guesses it mints tokens for any actor. A length rule
alone accepts ``"a" * 32`` or ``"changeme-changeme-changeme-change"``, so these checks also refuse
placeholder words, repeated patterns, runs of consecutive characters and a low estimated entropy.
Output of a proper generator (``secrets.token_urlsafe(32)`` or longer, ``secrets.token_hex(16)``
or longer) always passes. The checks never report the secret itself, only what is wrong with it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Final

__all__ = ["MIN_DISTINCT_CHARACTERS", "MIN_ENTROPY_BITS", "PLACEHOLDER_WORDS", "weakness"]

# Words that mark a value copied from an example or a template rather than generated.
PLACEHOLDER_WORDS: Final = (
    "changeme",
    "changeit",
    "changethis",
    "replaceme",
    "placeholder",
    "secret",
    "password",
    "passwd",
    "example",
    "default",
    "dummy",
    "qwerty",
    "letmein",
)
MIN_DISTINCT_CHARACTERS: Final = 8
# A length-times-symbol-entropy estimate; 32 random hex characters score about 96-130.
MIN_ENTROPY_BITS: Final = 80
# Share of distinct 3-character windows below which the secret is a repeated pattern.
_MIN_DISTINCT_TRIGRAMS: Final = 0.75
# Share of neighbouring characters one code point apart above which it is a run ("abcd...").
_MAX_STEP_SHARE: Final = 0.5


def _estimated_bits(secret: str) -> float:
    """Length times the Shannon entropy of the character frequencies (an upper bound)."""
    counts = Counter(secret)
    total = len(secret)
    per_char = -sum(n / total * math.log2(n / total) for n in counts.values())
    return per_char * total


def weakness(secret: str, minimum_length: int) -> str | None:
    """Why ``secret`` must not sign tokens (a phrase that never quotes it), or ``None``.

    Args:
        secret: The candidate signing secret.
        minimum_length: The fewest UTF-8 bytes the algorithm needs.
    """
    if len(secret.encode("utf-8")) < minimum_length:
        return f"it is shorter than {minimum_length} characters"
    folded = "".join(ch for ch in secret.lower() if ch.isalnum())
    for word in PLACEHOLDER_WORDS:
        if word in folded:
            return f"it contains the placeholder word {word!r}"
    distinct = len(set(secret))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return (
            f"it uses only {distinct} distinct characters (at least {MIN_DISTINCT_CHARACTERS} "
            "needed)"
        )
    windows = [secret[i : i + 3] for i in range(len(secret) - 2)]
    if len(set(windows)) < _MIN_DISTINCT_TRIGRAMS * len(windows):
        return "it repeats a short pattern"
    steps = sum(abs(ord(a) - ord(b)) <= 1 for a, b in itertools.pairwise(secret))
    if steps > _MAX_STEP_SHARE * (len(secret) - 1):
        return "it is mostly a run of consecutive or repeated characters"
    bits = _estimated_bits(secret)
    if bits < MIN_ENTROPY_BITS:
        return (
            f"it is too predictable (about {bits:.0f} bits of entropy, at least "
            f"{MIN_ENTROPY_BITS} needed)"
        )
    return None
