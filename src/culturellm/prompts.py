"""The one place that words survey questions and culture prompts.

Training records (dataset/build.py), WVS alignment (evaluate/align.py) and the culture-prompt
baseline all use these functions, so a model is asked at evaluation exactly as it was taught.
"""

from __future__ import annotations

from collections.abc import Mapping

Message = dict[str, str]

SURVEY_INSTRUCTION = "Answer with the number of one option only."


def culture_system_prompt(display_name: str) -> str:
    """System prompt naming the culture (the paper's 'You are a {culture} chatbot...' idea)."""
    return (
        f"You are a person from the {display_name} culture. "
        f"Answer as a typical person from the {display_name} culture would."
    )


def format_survey_question(text: str, options: Mapping[str, str]) -> str:
    """The question with its coded options, ending with the answer instruction."""
    lines = [text.strip(), "", "Options:"]
    lines += [f"{code}. {label}" for code, label in options.items()]
    lines += ["", SURVEY_INSTRUCTION]
    return "\n".join(lines)


def survey_messages(text: str, options: Mapping[str, str], system: str | None = None) -> list[Message]:
    """Chat messages that ask one survey question; the expected assistant reply is an option code."""
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": format_survey_question(text, options)})
    return messages
