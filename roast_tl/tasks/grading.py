"""Strict answer extraction: completion text -> canonical answer string, or None.

Strict on purpose: the ROAST authors' lenient matcher counted a first-character match for short
gold answers ("Answer: B" for gold "A"), which mislabels rollouts and so corrupts the contrast.
"""

import re
from decimal import Decimal, InvalidOperation, localcontext

# A number not glued to a word or another number ("3-4" is 3 and 4, "Qwen3" none); commas only
# as thousands separators, so "1,234" is one number and "1,2,3" three.
_NUMBER = re.compile(r"(?<![\w.])-?\$?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
_FINAL_MARK = "####"

MAX_NUMBER_DIGITS = 1000
"""Longest number (digits written out in plain form) `normalize_number` accepts: "1e999999999"
would otherwise build a billion-digit integer, and Python refuses to print ints over 4300."""


def _plain_digits(value: Decimal) -> int:
    """How many digits `value` has written out plainly, trailing zeros of a fraction dropped.

    >>> [_plain_digits(Decimal(t)) for t in ("1e3", "0.05", "1.000", "0.0", "-12.50")]
    [4, 3, 1, 1, 3]
    """
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    if not any(digits):
        return 1
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0 and exponent < 0:
        significant, exponent = significant - 1, exponent + 1
    return max(significant + exponent, 1) + max(-exponent, 0)


def normalize_number(text: str) -> str | None:
    """Canonical form of a number string: no commas, `$` or trailing zeros ("1,234.0" -> "1234").

    Exact (decimal, not float) so that long integers survive; None for text that is not a
    finite number or is longer than `MAX_NUMBER_DIGITS` digits written out ("1e999999999").

    >>> normalize_number("$1,234.50"), normalize_number("-3"), normalize_number("18.")
    ('1234.5', '-3', '18')
    >>> normalize_number("1e3"), normalize_number("1e999999999")
    ('1000', None)
    """
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or _plain_digits(value) > MAX_NUMBER_DIGITS:
        return None
    with localcontext() as context:  # exact: the default 28-digit precision would round
        context.prec = MAX_NUMBER_DIGITS + 2
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")


def extract_final_number(text: str) -> str | None:
    """The number after the last `####`, else the last number in the text, normalized.

    >>> extract_final_number("so 3 + 4 = 7 apples.\\n#### 1,234")
    '1234'
    >>> extract_final_number("no digits") is None
    True
    """
    if _FINAL_MARK in text:
        match = _NUMBER.search(text.rsplit(_FINAL_MARK, 1)[1])
        if match:
            return normalize_number(match.group())
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def gsm8k_gold(answer_field: str) -> str:
    """The gold number of a GSM8K `answer` field (the text after the last `####`), normalized.

    Refused (ValueError) unless it is a plain number of at most `MAX_NUMBER_DIGITS` digits that
    `extract_final_number` reads back unchanged, so that the worked answer grades as correct.

    >>> gsm8k_gold("48/2 = <<48/2=24>>24 clips.\\n#### 1,072")
    '1072'
    """
    if _FINAL_MARK not in answer_field:
        raise ValueError(
            f"a GSM8K answer must end with a line '#### <number>', got ...{answer_field[-40:]!r}"
        )
    final = answer_field.rsplit(_FINAL_MARK, 1)[1]
    gold = normalize_number(final)
    if gold is None:
        raise ValueError(
            f"no plain number of at most {MAX_NUMBER_DIGITS} digits after the last '####' in "
            f"...{answer_field[-40:]!r}; write the final line as '#### 42'"
        )
    if extract_final_number(answer_field) != gold:  # "1e3": the grader would read 1, not 1000
        raise ValueError(
            f"the grader reads the final number {final.strip()[:40]!r} as "
            f"{extract_final_number(answer_field)!r}, not {gold[:40]!r}; write it out plainly "
            "(no exponent), e.g. '#### 1000'"
        )
    return gold


def extract_label(text: str, labels: tuple[str, ...] = ("positive", "negative")) -> str | None:
    """The one label the completion names as a whole word (case-insensitive), else None.

    A hedge ("neutral"), both labels, or a label inside a longer word ("non-negative") give None.

    >>> extract_label("Positive."), extract_label("neutral")
    ('positive', None)
    >>> extract_label("positive, not negative") is None
    True
    """
    found = [
        label
        for label in labels
        if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text, flags=re.IGNORECASE)
    ]
    return found[0].lower() if len(found) == 1 else None


# Letters must be capitals (so "the answer is a guess" names no letter); keywords any case.
_LETTER_PATTERNS = (
    re.compile(r"^\s*\(?([A-Z])\)?[.):]?\s*$", re.MULTILINE),  # a line that is "B", "(B)", "B."
    re.compile(r"^\s*\(?([A-Z])[.):]\s", re.MULTILINE),  # "B. Paris", "B) Paris"
    re.compile(r"(?i:\b(?:answer|option|choice)(?:\s+is)?)\s*:?\s*\(?([A-Z])\)?(?!\w)"),
)


def extract_choice_letter(text: str, letters: str = "ABCD") -> str | None:
    """The answer letter the completion commits to, else None (two different letters -> None).

    No first-character matching: "Answer: B" is B, never a match for gold "A".

    >>> extract_choice_letter("Answer: B"), extract_choice_letter("(C)")
    ('B', 'C')
    >>> extract_choice_letter("A or B") is None
    True
    """
    plain = text.replace("*", "")  # markdown bold, "**B**"
    found = {
        match.group(1)
        for pattern in _LETTER_PATTERNS
        for match in pattern.finditer(plain)
        if match.group(1) in letters
    }
    return found.pop() if len(found) == 1 else None
