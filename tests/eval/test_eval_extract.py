"""Answer extraction on the shapes small and reasoning models really write."""

from __future__ import annotations

import pytest

from terminus.eval.extract import extract_answer, strip_thinking

LETTERS = ("A", "B", "C", "D", "E")
YES_NO = ("yes", "no", "maybe")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: B", "B"),
        ("answer: c", None),  # lower-case letters are words ("a patient"), not options
        ("Final Answer: D", "D"),
        ("Final answer is (A).", "A"),
        ("**Answer:** C", "C"),
        ("**Final Answer: (E)**", "E"),
        ("The answer is D.", "D"),
        ("The correct answer is option B because the lesion is distal.", "B"),
        ("Let's think. (A) is wrong, (B) is wrong, (C) fits.\nAnswer: C", "C"),
        ("<think>It could be A or B... I'd say A</think>\nAnswer: B", "B"),
        ("<think>A long chain of thought that never ends", None),
        ("I choose (C)", "C"),
        ("C", "C"),
        ("B. Metformin is first line.", "B"),
        ("Answer: A patient with this presentation needs surgery", "A"),
        ("Options: (A) x (B) y (C) z", None),  # restating options commits to nothing
        ("I am not sure.", None),
        ("", None),
        ("Answer: F", None),  # not an option of this question
        ("Answer: B\n...on reflection, Final Answer: D", "D"),
        ("Answer:\n(B)", "B"),
        ("## Answer\nAnswer: `A`", "A"),
        ("The answer is not B.", None),  # negation: no commitment
        ("The correct answer is most likely C.", "C"),
        ("B, because the lesion is distal.\nThat explains the findings", "B"),
        ("The correct answer would be (C).", "C"),
        ("The correct answer is (C). The correct answer is (B).", "B"),
    ],
)
def test_letter_answers(text: str, expected: str | None) -> None:
    assert extract_answer(text, LETTERS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: yes", "yes"),
        ("Answer: No", "no"),
        ("Final Answer: MAYBE", "maybe"),
        ("The answer is yes, the data support it.", "yes"),
        ("Yes.", "yes"),
        ("no idea really", None),
        ("<think>maybe no</think>Answer: maybe", "maybe"),
        ("Answer: yesterday", None),
        ('Yes, I will respond with "yes".', "yes"),
        ("Yes, a hydrogel can deliver them. The answer is indeed Yes.", "yes"),
        ("It may not be ideal for all patients, as it does not educate them.", None),
    ],
)
def test_pubmedqa_answers(text: str, expected: str | None) -> None:
    assert extract_answer(text, YES_NO) == expected


def test_strip_thinking_keeps_the_answer() -> None:
    assert strip_thinking("<think>x</think>Answer: A").strip() == "Answer: A"
    assert strip_thinking("<THINK>\nx\n</THINK> ok").strip() == "ok"
