"""Prompts of the augmentation steps. Generic (any chat LLM), each with one worked example of the
output format, which is what a tiny instruct model like SmolLM2-135M needs to follow it."""

from __future__ import annotations

from collections.abc import Sequence

from culturellm.llm.base import Chat

PARAPHRASE_SYSTEM = (
    "You rewrite survey statements. Every rewrite keeps exactly the same meaning, "
    "but uses a different sentence structure and different words. Reply with a numbered list only."
)
_PARA_EXAMPLE = (
    "Most people can be trusted",
    [
        "The majority of people are trustworthy.",
        "You can trust most people.",
        "Most people deserve to be trusted.",
    ],
)


def _para_user(text: str, k: int) -> str:
    return f"Rewrite this statement in {k} different ways.\nStatement: {text.strip()}"


def paraphrase_messages(text: str, k: int) -> Chat:
    """Ask for k rewrites of `text` (same meaning, different structure) as a numbered list."""
    ex_text, ex_items = _PARA_EXAMPLE
    return [
        {"role": "system", "content": PARAPHRASE_SYSTEM},
        {"role": "user", "content": _para_user(ex_text, len(ex_items))},
        {"role": "assistant", "content": "\n".join(f"{i}. {s}" for i, s in enumerate(ex_items, 1))},
        {"role": "user", "content": _para_user(text, k)},
    ]


SYNONYM_SYSTEM = "You find synonyms of words as they are used in a sentence. Reply with a JSON object only."
_SYN_EXAMPLE = (
    "Children need a stable home",
    ["children", "need", "stable", "home"],
    '{"children": ["kids", "youngsters"], "need": ["require"], "stable": ["secure", "steady"], '
    '"home": ["household", "family"]}',
)


def _syn_user(sentence: str, words: Sequence[str], per_word: int) -> str:
    return (
        f"Give up to {per_word} synonyms for each word, as it is used in the sentence.\n"
        f"Sentence: {sentence.strip()}\nWords: {', '.join(words)}\n"
        'Reply as JSON: {"word": ["synonym", ...]}'
    )


def synonym_messages(sentence: str, words: Sequence[str], per_word: int = 3) -> Chat:
    """Ask for synonyms of all `words` of one sentence in ONE request (JSON word -> [synonyms])."""
    ex_s, ex_w, ex_a = _SYN_EXAMPLE
    return [
        {"role": "system", "content": SYNONYM_SYSTEM},
        {"role": "user", "content": _syn_user(ex_s, ex_w, 2)},
        {"role": "assistant", "content": ex_a},
        {"role": "user", "content": _syn_user(sentence, words, per_word)},
    ]


TRANSLATE_SYSTEM = "You are a translator. Reply with the translation only, on one line."


def translate_messages(text: str, language: str) -> Chat:
    """Ask for a translation of `text` into `language`."""
    return [
        {"role": "system", "content": TRANSLATE_SYSTEM},
        {"role": "user", "content": f"Translate into {language}:\n{text.strip()}"},
    ]
