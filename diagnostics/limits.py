"""Upload limits in words a person reads: "50 MB", "16.8 million pixels (about 4096 × 4096)".

The API's refusals and the upload page word the same limit with the same sentence, so a patient sees
one message whether the browser stops a file before sending it or the server refuses it.
Free of Django, so the scan readers (diagnostics.ml) word their limits here too.
"""

from math import isqrt

_UNITS = ("bytes", "KB", "MB", "GB", "TB")


def _number(value: float) -> str:
    # "50", "2.5", never "50.0".
    return f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"


def size_words(size: int) -> str:
    """A size in bytes as people write it: 52428800 -> "50 MB" (units of 1024, as file managers count)."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{size} bytes"
    return f"{_number(value)} {_UNITS[unit]}"


def pixel_count_words(count: int) -> str:
    """16777216 -> "16.8 million pixels (about 4096 × 4096)"; a square is easier to picture than a count."""
    words = f"{count / 1_000_000:.1f}".removesuffix(".0") + " million" if count >= 1_000_000 else f"{count:,}"
    side = isqrt(count)
    return f"{words} pixels (about {side} × {side})"


def too_large_sentence(max_bytes: int) -> str:
    return f"The file is larger than {size_words(max_bytes)}, the most that can be uploaded."


def too_many_pixels_sentence(width: int, height: int, max_pixels: int) -> str:
    return (f"The image is {width} × {height} pixels, more than the limit of "
            f"{pixel_count_words(max_pixels)}.")
