"""Strict answer extraction: completion text -> canonical answer string, or None.

Strict on purpose: the ROAST authors' lenient matcher counted a first-character match for short
gold answers ("Answer: B" for gold "A"), which mislabels rollouts and so corrupts the contrast.
"""

import re

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_FINAL_MARK = "####"


def normalize_number(text: str) -> str | None:
    """Canonical form of a number string: no commas, `$` or trailing zeros ("1,234.0" -> "1234")."""
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    if value.is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def extract_final_number(text: str) -> str | None:
    """The number after the last `####`, else the last number in the text, normalized.

    >>> extract_final_number("so 3 + 4 = 7 apples.\\n#### 1,234")
    '1234'
    >>> extract_final_number("no digits") is None
    True
    """
    if _FINAL_MARK in text:
        tail = text.rsplit(_FINAL_MARK, 1)[1]
        match = _NUMBER.search(tail)
        if match:
            return normalize_number(match.group())
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_gold(answer_field: str) -> str:
    """The gold number of a GSM8K `answer` field (the text after `####`)."""
    if _FINAL_MARK not in answer_field:
        raise ValueError("a GSM8K answer must end with '#### <number>'")
    gold = normalize_number(answer_field.rsplit(_FINAL_MARK, 1)[1])
    if gold is None:
        raise ValueError(f"no number after '####' in {answer_field[-40:]!r}")
    return gold


def extract_label(text: str, labels: tuple[str, ...] = ("positive", "negative")) -> str | None:
    """The one label the completion names as a whole word (case-insensitive), else None.

    >>> extract_label("Positive."), extract_label("neutral"), extract_label("positive, not negative")
    ('positive', None, None)
    """
    words = set(re.findall(r"[a-z]+", text.lower()))
    found = [label for label in labels if label.lower() in words]
    return found[0].lower() if len(found) == 1 else None


_LETTER_PATTERNS = (
    r"^\s*\(?([A-Z])\)?\s*[.):]?\s*$",  # "B", "(B)", "B."
    r"^\s*\(?([A-Z])\)?[.):]\s",  # "B. Paris", "B) Paris"
    r"answer\s*(?:is|:)?\s*\(?([A-Z])\b\)?",  # "Answer: B", "the answer is (B)"
)


def extract_choice_letter(text: str, letters: str = "ABCD") -> str | None:
    """The answer letter the completion commits to, else None (two different letters -> None).

    >>> extract_choice_letter("Answer: B"), extract_choice_letter("(C)"), extract_choice_letter("A or B")
    ('B', 'C', None)
    """
    found = set()
    for pattern in _LETTER_PATTERNS:
        for match in re.finditer(pattern, text, flags=re.IGNORECASE | re.MULTILINE):
            letter = match.group(1).upper()
            if letter in letters:
                found.add(letter)
    return found.pop() if len(found) == 1 else None
