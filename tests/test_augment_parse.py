"""Unit tests of the augmentation's parsing, word choice and substitution (no model needed)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from culturellm.augment.parse import clean_sentence, normalize, parse_list, parse_synonyms
from culturellm.meaning.words import (
    build_variants,
    content_words,
    negation_count,
    option_words,
    substitute,
)

REWRITES = [
    "The majority of people are trustworthy.",
    "You can trust most people.",
    "Most people deserve trust.",
]


def test_numbered_list_with_chatter():
    text = (
        "Here are 3 rewrites:\n1. The majority of people are trustworthy.\n"
        "2) You can trust most people.\n(3) Most people deserve trust."
    )
    p = parse_list(text)
    assert p.items == REWRITES and p.format == "list" and p.rejected is None


def test_bullets_markdown_quotes_labels():
    text = (
        '- **Rewrite 1:** "The majority of people are trustworthy."\n'
        "* “You can trust most people.”\n• Most people deserve trust."
    )
    assert parse_list(text).items == REWRITES


def test_json_array_object_and_fence():
    assert parse_list(json.dumps(REWRITES)).items == REWRITES
    assert parse_list('Sure!\n```json\n{"paraphrases": ' + json.dumps(REWRITES) + "}\n```").items == REWRITES
    assert parse_list("[" + ", ".join(f"'{r}'" for r in REWRITES) + "]").items == REWRITES
    assert parse_list(json.dumps([{"text": r} for r in REWRITES])).items == REWRITES


def test_continuation_lines_join_their_item():
    p = parse_list("1. The majority of people\nare trustworthy.\n2. You can trust most people.")
    assert p.items == ["The majority of people are trustworthy.", "You can trust most people."]


def test_unnumbered_lines_and_single_sentence():
    assert parse_list("You can trust most people.").items == ["You can trust most people."]
    assert parse_list("You can trust most people.\nMost people deserve trust.").format == "lines"


def test_rejections_are_counted_not_raised():
    assert parse_list("").rejected == "empty"
    assert parse_list(None).rejected == "empty"  # type: ignore[arg-type]
    assert parse_list("1. ok\n2. no").rejected == "no_items"  # too short
    assert parse_list("Here are some rewrites:").rejected == "no_items"


def test_duplicates_dropped_case_insensitively():
    assert parse_list("1. You can trust most people.\n2. you can trust most people").items == [
        "You can trust most people."
    ]


def test_clean_sentence():
    assert clean_sentence('3. "Most people are trustworthy".') == "Most people are trustworthy."
    assert clean_sentence("Paraphrase 2: You can trust most people") == "You can trust most people"
    assert normalize("Don’t  WORK, turn lazy!") == "don t work turn lazy"


def test_synonyms_json_and_strings():
    text = (
        'Here you go: {"work": ["employment", "labour", "Work"], '
        '"duty": "obligation, responsibility", "x": 3}'
    )
    p = parse_synonyms(text, ["work", "duty", "society"])
    assert p.synonyms == {"work": ["employment", "labour"], "duty": ["obligation", "responsibility"]}
    assert p.format == "json"


def test_synonyms_python_literal_and_lines():
    assert parse_synonyms("{'Work': ['job']}", ["work"]).synonyms == {"work": ["job"]}
    p = parse_synonyms("1. work: job, labour\n2. duty - obligation or responsibility\nnonsense")
    assert p.synonyms == {"work": ["job", "labour"], "duty": ["obligation", "responsibility"]}


def test_synonyms_keys_restricted_and_bad_values_dropped():
    p = parse_synonyms('{"work": ["a very long phrase of words", "12", "job!"], "other": ["x"]}', ["work"])
    assert p.synonyms == {"work": ["job"]}
    assert parse_synonyms('{"other": ["thing"]}', ["work"]).rejected == "no_synonyms"
    assert parse_synonyms("", ["work"]).rejected == "empty"


def test_synonyms_per_word_limit():
    p = parse_synonyms('{"work": ["a", "b", "c", "d"]}', per_word=2)
    assert p.synonyms == {"work": ["a", "b"]}


llm_like = st.one_of(
    st.text(max_size=400),
    st.lists(st.text(max_size=60), max_size=8).map(json.dumps),
    st.dictionaries(
        st.text(max_size=12), st.one_of(st.text(max_size=20), st.lists(st.text(max_size=20)))
    ).map(json.dumps),
    st.lists(
        st.tuples(st.sampled_from(["1.", "2)", "-", "*", "(3)", "", "a."]), st.text(max_size=60)), max_size=8
    ).map(lambda xs: "\n".join(f"{m} {t}" for m, t in xs)),
    st.text(alphabet="[]{}\"',:;\n-*1234567890abc ", max_size=200),
)


@settings(max_examples=300, deadline=None)
@given(llm_like)
def test_parse_list_never_crashes(text):
    p = parse_list(text)
    assert isinstance(p.items, list)
    assert all(isinstance(s, str) and s.strip() and len(s.split()) >= 3 for s in p.items)
    assert (p.rejected is None) == bool(p.items)


@settings(max_examples=300, deadline=None)
@given(llm_like, st.lists(st.text(min_size=1, max_size=10), max_size=4))
def test_parse_synonyms_never_crashes(text, words):
    p = parse_synonyms(text, words or None)
    assert isinstance(p.synonyms, dict)
    assert (p.rejected is None) == bool(p.synonyms)
    for w, syns in p.synonyms.items():
        assert syns and all(isinstance(s, str) and s and s != w.lower() for s in syns)
        if words:
            assert w in words


def test_content_words_skip_function_negation_quantifier_and_option_words():
    text = "When jobs are scarce, men should not always have more right to a job than women"
    words = content_words(text, option_words(["Agree", "Disagree"]))
    assert words == ["jobs", "scarce", "men", "right", "job", "women"]
    assert content_words("Do you agree with this?", option_words(["Agree"])) == []
    assert content_words("People who don’t work turn lazy") == ["People", "work", "turn", "lazy"]


def test_content_words_keep_order_and_limit():
    assert content_words("Children need a stable home", limit=2) == ["Children", "need"]


def test_negation_count():
    assert negation_count("People who don’t work turn lazy") == 1
    assert negation_count("It is not a duty, and never was") == 2
    assert negation_count("Work is a duty") == 0
    assert negation_count("We cannot live without faith") == 2


def test_substitute_keeps_case_and_whole_words():
    assert (
        substitute("Work is work, homework is not", {"work": "labour"}) == "Labour is labour, homework is not"
    )
    assert substitute("The MEN agree", {"men": "males"}) == "The MALES agree"


def test_build_variants_singles_then_combinations_and_cap():
    t = "When a mother works for pay, the children suffer"
    syn = {"mother": ["mom", "parent"], "children": ["kids"], "suffer": ["struggle"], "absent": ["x"]}
    vs = build_variants(t, syn, max_combined=2, max_candidates=100)
    assert [v.text for v in vs[:4]] == [
        "When a mom works for pay, the children suffer",
        "When a parent works for pay, the children suffer",
        "When a mother works for pay, the kids suffer",
        "When a mother works for pay, the children struggle",
    ]
    assert all(len(v.swaps) == 2 for v in vs[4:]) and len(vs) == 4 + 5
    assert len({v.text for v in vs}) == len(vs) and t not in {v.text for v in vs}
    assert len(build_variants(t, syn, max_candidates=3)) == 3
    assert build_variants(t, {}) == []


def test_synonyms_broken_json_of_small_models_is_repaired():
    text = '{"duty": ["responsibility", "obligation"], "protect", ["guard", "shield"], "care", ["look after"'
    p = parse_synonyms(text, ["duty", "protect", "care"])
    assert p.format == "json_repaired"
    assert p.synonyms == {
        "duty": ["responsibility", "obligation"],
        "protect": ["guard", "shield"],
        "care": ["look after"],
    }
    truncated = '{"child": ["kid"], "duties": ["responsibility", "obligation", "respons'
    assert parse_synonyms(truncated, ["child", "duties"]).synonyms == {
        "child": ["kid"],
        "duties": ["responsibility", "obligation"],  # the cut-off last word is not used
    }
