"""Strict graders: golden cases, the lenient-match trap, and properties of number extraction."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roast_tl.tasks.grading import (
    MAX_NUMBER_DIGITS,
    extract_choice_letter,
    extract_final_number,
    extract_label,
    gsm8k_gold,
    normalize_number,
)
from tests.tiny_model import finishes_within


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Positive", "positive"),
        ("negative.", "negative"),
        ("  NEGATIVE!\n", "negative"),
        ("**Positive**", "positive"),
        ("The sentiment of this review is negative.", "negative"),
        ("Positive. Positive.", "positive"),
        ("The sentiment of this review is neutral.", None),
        ("neutral", None),
        ("positive and negative", None),
        ("Positive/negative", None),
        ("positively", None),
        ("non-negative", None),
        ("", None),
    ],
)
def test_extract_label(text, expected):
    assert extract_label(text) == expected


def test_extract_label_other_labels_are_canonical_lowercase():
    labels = ("Yes", "No")
    assert extract_label("yes.", labels) == "yes"
    assert extract_label("No, I don't think so", labels) == "no"
    assert extract_label("yes and no", labels) is None


@pytest.mark.parametrize(
    "text,expected",
    [
        ("#### 1,234", "1234"),
        ("so 3 + 4 = 7", "7"),
        ("The answer is $18.00.", "18"),
        ("18.0", "18"),
        ("x = -3", "-3"),
        ("#### -3", "-3"),
        ("It is 2.50 dollars", "2.5"),
        ("#### 5\n#### 6", "6"),
        ("first 10 then\n#### 12 apples", "12"),
        ("#### 12\nthen I rambled about 99 more things", "12"),
        ("#### none\nbut it was 7", "7"),
        ("pages 3-4", "4"),
        ("1,2,3", "3"),
        ("Qwen3 says", None),
        ("no number", None),
        ("", None),
    ],
)
def test_extract_final_number(text, expected):
    assert extract_final_number(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1,234.0", "1234"),
        ("$5", "5"),
        ("0.10", "0.1"),
        ("-0", "0"),
        ("7.", "7"),
        ("123456789012345678901", "123456789012345678901"),
        # Exact beyond the default 28-digit decimal precision (it used to round these).
        ("1.000000000000000000000000000001", "1.000000000000000000000000000001"),
        ("1e3", "1000"),
        ("2.5e-3", "0.0025"),
        ("1e999", "1" + "0" * 999),  # 1000 digits: the longest accepted
        ("1e1000", None),  # 1001 digits
        ("0." + "0" * 998 + "1", "0." + "0" * 998 + "1"),  # 1000 digits written out
        ("0." + "0" * 999 + "1", None),
        ("abc", None),
        ("nan", None),
    ],
)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("B", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("**B**", "B"),
        ("B\n\nBecause the others are wrong.", "B"),
        ("Answer: D", "D"),
        ("answer:C", "C"),
        ("Answer: (B)", "B"),
        ("The answer is B", "B"),
        ("the answer is A.", "A"),
        ("The correct answer is: C", "C"),
        ("B. Paris", "B"),
        ("B) Paris", "B"),
        ("The answer is B, not A", "B"),
        ("A or B", None),
        ("Answer: A. No wait, answer: B", None),
        ("A. Paris\nB. London", None),
        ("The answer is a bit unclear", None),
        ("answer: b", None),
        ("Answers vary", None),
        ("Answer: E", None),
        ("Paris", None),
        ("", None),
    ],
)
def test_extract_choice_letter(text, expected):
    assert extract_choice_letter(text) == expected


def test_choice_letter_respects_the_offered_letters():
    assert extract_choice_letter("Answer: E", letters="ABCDE") == "E"
    assert extract_choice_letter("Answer: C", letters="AB") is None


def test_gsm8k_gold():
    assert gsm8k_gold("48/2 = <<48/2=24>>24\n#### 72") == "72"
    assert gsm8k_gold("so\n#### 1,234") == "1234"
    assert gsm8k_gold("so\n#### 2.50") == "2.5"
    with pytest.raises(ValueError, match="####"):
        gsm8k_gold("no final line")
    with pytest.raises(ValueError, match="no plain number"):
        gsm8k_gold("so\n#### many")
    # The worked answer must grade as correct: the grader reads "1e3" as 1 (no exponents).
    with pytest.raises(ValueError, match="the grader reads the final number '1e3' as '1'"):
        gsm8k_gold("so\n#### 1e3")


@pytest.mark.parametrize("number", ["1e999999999", "1e-999999999", "9" * 1001, "1e1000"])
def test_numbers_too_long_to_write_out_are_refused_quickly(number):
    # "1e999999999" used to build a billion-digit int, "1e-999999999" a billion-character string.
    assert finishes_within(10, normalize_number, number)
    assert normalize_number(number) is None
    with pytest.raises(ValueError, match=f"no plain number of at most {MAX_NUMBER_DIGITS} digits"):
        gsm8k_gold(f"so\n#### {number}")


@given(st.integers(min_value=-(10**MAX_NUMBER_DIGITS - 1), max_value=10**MAX_NUMBER_DIGITS - 1))
def test_normalize_number_is_exact_for_every_integer_up_to_the_cap(n):
    assert normalize_number(str(n)) == str(n)
    assert normalize_number(f"{n}.000") == str(n)


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_final_number_round_trips_comma_formatted_integers(n):
    assert extract_final_number(f"so the total is\n#### {n:,}") == str(n)
    assert extract_final_number(f"so the total is {n:,}.") == str(n)
    assert gsm8k_gold(f"work\n#### {n:,}") == str(n)


@given(
    st.sampled_from(["positive", "negative"]),
    st.sampled_from(["", " ", "\n", "**", '"', "("]),
    st.sampled_from(["", ".", "!", "**", '"', ")", " \n"]),
    st.booleans(),
)
def test_label_survives_case_and_surrounding_punctuation(label, before, after, upper):
    word = label.upper() if upper else label.capitalize()
    assert extract_label(f"{before}{word}{after}") == label
