"""Survey statements with four answer options, and chat rows answering them as a culture: the training
data of the fine-tuning tests and the requests of the precision test."""

from __future__ import annotations

from culturellm.prompts import culture_system_prompt, survey_messages

OPTIONS = {"1": "Strongly agree", "2": "Agree", "3": "Disagree", "4": "Strongly disagree"}
STATEMENTS = [
    "Family is very important in life",
    "Work should always come first",
    "Religion gives meaning to life",
    "Men make better political leaders",
    "Homosexuality is never justifiable",
    "Most people can be trusted",
]


def records(display: str = "Arabic", answers: str = "3142", copies: int = 2) -> list[dict]:
    """Chat rows answering the first four statements (`answers`: one option code each) under the
    culture prompt of `display`, `copies` times over."""
    rows = []
    for _ in range(copies):
        for text, ans in zip(STATEMENTS[:4], answers, strict=True):
            msgs = survey_messages(text, OPTIONS, culture_system_prompt(display))
            rows.append({"messages": [*msgs, {"role": "assistant", "content": ans}]})
    return rows
