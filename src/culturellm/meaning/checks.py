"""Meaning checks of the filter chain: lexical tests for the failure classes a sentence embedder
cannot see (docs/augmentation.md, "Meaning checks").

Each check compares a candidate with its seed (and, for a synonym swap, the swaps made in the
sentence it came from) and returns a named rejection reason or None:

* ``repeated_word`` - a swap puts a word that is already in the sentence into it again ("Men are
  better leaders than men"), or a comparison ends up comparing a group with itself;
* ``opposed_words`` - a swap between the two sides of an opposed pair or group (women/men,
  boy/girl, rich/poor, young/old, this country/other countries ...), a paraphrase in which one side
  of such a group replaced the other, or a comparison whose sides were exchanged ("men ... than
  women" -> "women ... than men") without its comparative being reversed too;
* ``synonym_not_a_word`` / ``synonym_pos_mismatch`` - a proposed synonym that is not an English
  dictionary word, or not one of the same part of speech and inflection as the word it replaces
  (life -> live, women -> woman), looked up in LemmInflect's lexicon (NIH SPECIALIST Lexicon data
  shipped in the wheel, so nothing is downloaded at run time);
* ``modal_change`` - the candidate brings in a modality the seed does not have (obligation: must,
  should, duty ...; a right or entitlement; ability or possibility: can, may ...) or drops all of
  the seed's ("have the duty to provide" -> "can provide");
* ``key_word_missing`` - a key content word of the seed (a noun of the statement itself, named
  groups included) is missing from the candidate and nothing stands in for it: no word of the same
  lemma or stem, no swap of it, and no candidate word whose embedding cosine with it reaches
  ``t_standin``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from culturellm.meaning import MEANING_CHECKS as CHECKS
from culturellm.meaning.words import STOPWORDS


def _csv(text: str) -> frozenset[str]:
    return frozenset(text.split(","))


# Opposed pairs and groups: a swap from one side to the other reverses who or what the statement is
# about. Words may sit in several dimensions (mother: gender and generation).
OPPOSED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    name: (_csv(a), _csv(b))
    for name, a, b in (
        (
            "gender",
            "man,men,male,males,boy,boys,husband,husbands,father,fathers,dad,dads,son,sons,brother,"
            "brothers,gentleman,gentlemen,masculine",
            "woman,women,female,females,girl,girls,wife,wives,mother,mothers,mom,moms,mum,mums,"
            "daughter,daughters,sister,sisters,lady,ladies,feminine",
        ),
        (
            "generation",
            "child,children,kid,kids,son,sons,daughter,daughters,offspring",
            "parent,parents,mother,mothers,father,fathers,mom,moms,dad,dads,grandparents",
        ),
        ("age", "young,younger,youth,youngsters,juniors", "old,older,elderly,aged,seniors,elders"),
        ("wealth", "rich,richer,wealthy,affluent", "poor,poorer,needy,impoverished"),
        (
            "nation",
            "this country,our country,my country,your country,citizens,nationals,natives,compatriots,"
            "locals,people of this country",
            "other countries,another country,other country,immigrants,immigrant,foreigners,foreign,"
            "migrants,outsiders",
        ),
        ("sexuality", "homosexual,gay,lesbian,same-sex", "heterosexual,straight,opposite-sex"),
        ("employment", "employer,employers,boss,bosses", "employee,employees,worker,workers,staff"),
        ("faith", "religion,religious,faith,believers", "science,scientific,secular,atheists"),
        ("comparative", "better,best,superior", "worse,worst,inferior"),  # _POLARITY
        ("quality", "good,great", "bad,poor,terrible"),
        ("quantity", "more,most,higher,greater,increase,increases", "less,least,fewer,lower,reduce,reduces"),
        ("agreement", "agree,agrees,accept,accepts,approve", "disagree,disagrees,reject,rejects,disapprove"),
        ("truth", "right,correct,true", "wrong,incorrect,false"),
        ("effect", "benefit,benefits,gain,gains,helps,help", "suffer,suffers,lose,loses,harm,harms,hurt"),
        ("health", "healthy,healthier", "unhealthy,unhealthier,sick"),
        ("ease", "easy,easier,simple,simpler", "hard,harder,difficult"),
        ("importance", "important,essential,vital", "unimportant,trivial,irrelevant"),
        ("legality", "legal,lawful,allowed,permitted", "illegal,unlawful,forbidden,banned"),
        ("fairness", "fair,fairly,equal", "unfair,unfairly,unjust,unequal"),
        ("sameness", "same,similar,alike", "different,other"),
        ("privacy", "public", "private"),
        ("strength", "strong,stronger", "weak,weaker"),
        ("happiness", "happy,happier,satisfied,fulfilling", "unhappy,unhappier,dissatisfied,unfulfilling"),
    )
}
_POLARITY = frozenset({"comparative", "quantity"})  # decided by the comparison test when there is one
_COMPARATIVE_SIGN = {
    **{w: 1 for w in _csv("better,more,higher,greater,superior,stronger,richer,happier,easier")},
    **{w: -1 for w in _csv("worse,less,lower,fewer,inferior,weaker,poorer,unhappier,harder")},
}

# Modality: deontic obligation, a right or entitlement, ability / possibility.
MODALITY = {
    "obligation": re.compile(
        r"\b(?:must|should|ought|shall|duty|duties|obliged|obligated|obligations?|obligatory|required|"
        r"responsibility|responsibilities|owes?|owed|(?:have|has|had|need|needs)\s+to)\b"
    ),
    "right": re.compile(
        r"\b(?:rights|entitled|entitlement|deserves?|deserved|deserving)\b|"
        r"\b(?:the|a|more|less|no|any|equal|have|has|had|of)\s+right\b|\bright\s+to\b"
    ),
    "ability": re.compile(r"\b(?:can|could|cannot|can't|may|might|able|unable|possible|impossible)\b"),
}
# The frame of a question put to the respondent ("Can you comment on ...", "Could you tell me whether
# ...", "Would you say ...", "May I ask ..."): a way of asking, not a modality of the statement.
QUESTION_FRAME = re.compile(
    r"(?:^|(?<=[,;:.?!]))\s*(?:(?:can|could|would|will|may|might)\s+(?:you|i|we|one)"
    r"(?:\s+please)?\b|(?:are|were)\s+you\s+able\s+to\b|is\s+it\s+possible\s+(?:for\s+you\s+)?to\b)"
)


def strip_question_frame(text: str) -> str:
    """`text` (lower-cased) without the frames of a question put to the respondent (QUESTION_FRAME), so
    that "Can you comment on the rate of violence?" has no modality of its own."""
    return QUESTION_FRAME.sub(" ", text.lower().replace("’", "'"))


# Nouns that frame a survey question rather than carry its content.
GENERIC_NOUNS = _csv(
    "thing,things,way,ways,whole,term,terms,view,views,following,kind,kinds,sort,lot,part,case,fact,"
    "opinion,time,times,people,person,everyone,anyone,someone,one,ones,extent,regard,respect,"
    "question,statement,effect,effects,means"
)
# Words that do a deontic noun's job in a paraphrase ("more right to a job" -> "priority for jobs").
_ROLE_STANDINS = {
    w: _csv(
        "right,rights,priority,prefer,preferred,preference,precedence,favour,favor,deserve,deserves,"
        "entitled,entitlement,first,before"
    )
    for w in ("right", "rights", "priority", "preference", "precedence")
}
_ITEM_START = re.compile(r":|\bagree with\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


@lru_cache(maxsize=20000)
def lexicon_tags(word: str) -> frozenset[str]:
    """Penn Treebank tags `word` can have as a form of a dictionary entry (empty: not a dictionary
    word): NN for "life", NNS for "women", VB/VBP/JJ for "live"."""
    from lemminflect import getAllInflections, getAllLemmas

    w = word.lower().replace("’", "'")
    tags: set[str] = set()
    for upos, lemmas in getAllLemmas(w).items():
        for lemma in lemmas:
            for tag, forms in getAllInflections(lemma, upos=upos).items():
                if forms and forms[0] == w:  # the preferred form only: "work" is not a plural
                    tags.add(tag)
            if lemma == w and not tags:
                tags.add({"NOUN": "NN", "VERB": "VB", "ADJ": "JJ", "ADV": "RB"}.get(upos, upos))
    return frozenset(tags)


@lru_cache(maxsize=20000)
def lemmas(word: str) -> frozenset[str]:
    """Every lemma of `word` in any part of speech (the word itself when it is unknown)."""
    from lemminflect import getAllLemmas

    w = word.lower().replace("’", "'")
    out = {w}
    for ls in getAllLemmas(w).values():
        out.update(ls)
    return frozenset(out)


# dimensions that name groups of people: their words are key words of a statement
GROUPS_OF_PEOPLE = ("gender", "generation", "age", "wealth", "nation", "sexuality", "employment", "faith")
_GROUP_WORDS = frozenset(
    t for name in GROUPS_OF_PEOPLE for side in OPPOSED[name] for t in side if " " not in t
)
_NOUN_TAGS = frozenset({"NN", "NNS"})


def is_key_noun(word: str) -> bool:
    """A noun of the statement: a dictionary word that can only be a noun (parents, duty; not
    "works", "jobs", which can be verbs), or a word naming a group (women, immigrants, homosexual)."""
    w = word.lower()
    if w in _GROUP_WORDS:
        return True
    tags = lexicon_tags(w)
    return bool(tags) and tags <= _NOUN_TAGS


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _phrase_count(words: Sequence[str], term: str) -> int:
    parts = term.split(" ")
    n = len(parts)
    return sum(1 for i in range(len(words) - n + 1) if list(words[i : i + n]) == parts)


def _sides(words: Sequence[str], name: str) -> tuple[int, int]:
    a, b = OPPOSED[name]
    return sum(_phrase_count(words, t) for t in a), sum(_phrase_count(words, t) for t in b)


def _side_of(word: str) -> list[tuple[str, int]]:
    w = word.lower()
    return [(name, i) for name, sides in OPPOSED.items() for i in (0, 1) if w in sides[i]]


def _group_after(words: Sequence[str], i: int, names: Iterable[str]) -> dict[str, tuple[int, str]]:
    """{dimension: (side, term)} of the first group term within 5 words after position i."""
    after: dict[str, tuple[int, str]] = {}
    tail = list(words[i + 1 : i + 6])
    for name in names:
        for j in range(len(tail)):
            hit = [
                (k, t) for k in (0, 1) for t in OPPOSED[name][k] if tail[j : j + len(t.split())] == t.split()
            ]
            if hit:
                after[name] = hit[0]
                break
    return after


def _comparison(words: Sequence[str]) -> tuple[int, dict[str, tuple[int, str]]] | None:
    """(polarity of the comparative before 'than' / 'over', {dimension: (side, term)} of what
    follows it), or None when the sentence compares nothing."""
    marks = [i for i, w in enumerate(words) if w in ("than", "over")]
    if not marks:
        return None
    i = marks[0]
    sign = next((_COMPARATIVE_SIGN[w] for w in reversed(words[:i]) if w in _COMPARATIVE_SIGN), 0)
    return sign, _group_after(words, i, OPPOSED)


def _lost_comparison(seed_words: Sequence[str], cand_words: Sequence[str]) -> bool:
    """The seed compares one group of people with another ("men ... than women") and the candidate
    no longer puts any word of that group after a comparison word (than, over, before, to)."""
    s_cmp = _comparison(seed_words)
    people = [n for n in (s_cmp[1] if s_cmp else {}) if n in GROUPS_OF_PEOPLE]
    if not people:
        return False
    marks = [i for i, w in enumerate(cand_words) if w in ("than", "over", "before", "to")]
    found = {n for i in marks for n in _group_after(cand_words, i, people)}
    return any(n not in found for n in people)


def _item_region(text: str) -> str:
    """The part of a survey question that carries its content: after the last ':' or 'agree with'."""
    ms = list(_ITEM_START.finditer(text))
    return text[ms[-1].end() :] if ms else text


@dataclass
class Finding:
    """All the reasons a check found against one candidate (empty: it passes)."""

    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # key words waiting for the stand-in test
    seed_lemmas: frozenset[str] = frozenset()


class MeaningChecks:
    """The lexical meaning checks (module docstring). `embed` (a texts -> unit-norm matrix function,
    e.g. an `Embedder.encode`) decides stand-ins for missing key words; without it a missing key
    word with no same-lemma or stem match is rejected."""

    def __init__(
        self,
        checks: Iterable[str] = CHECKS,
        *,
        embed: Callable[[list[str]], np.ndarray] | None = None,
        t_standin: float = 0.5,
    ) -> None:
        self.checks = tuple(checks)
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown meaning check(s) {unknown}; known: {', '.join(CHECKS)}")
        self.embed, self.t_standin = embed, t_standin

    # --- public -------------------------------------------------------------------------------
    def check(
        self, seed: str, candidate: str, swaps: Sequence[Sequence[str]] = (), source: str | None = None
    ) -> str | None:
        """The first rejection reason for `candidate` (None: it passes)."""
        r = self.check_many([(seed, candidate, swaps, source)])[0]
        return r[0] if r else None

    def check_many(
        self, items: Sequence[tuple[str, str, Sequence[Sequence[str]], str | None]]
    ) -> list[list[str]]:
        """Every rejection reason of each (seed, candidate, swaps, source) item, in check order;
        the embeddings needed for stand-ins are computed in one call."""
        found = [self._lexical(seed, cand, swaps, source) for seed, cand, swaps, source in items]
        self._standins([(f, cand) for f, (_, cand, _, _) in zip(found, items, strict=True)])
        return [f.reasons for f in found]

    # --- the checks ---------------------------------------------------------------------------
    def _lexical(self, seed: str, cand: str, swaps: Sequence[Sequence[str]], source: str | None) -> Finding:
        f = Finding()
        sw = [(str(a), str(b)) for a, b in swaps]
        src = source if source is not None else seed
        on = set(self.checks)
        if "repeated_word" in on and self._repeated(seed, cand, sw, src):
            f.reasons.append("repeated_word")
        if "opposed_words" in on and self._opposed(seed, cand, sw):
            f.reasons.append("opposed_words")
        if "synonym_word" in on:
            f.reasons += [r for r in (self._synonym_word(a, b) for a, b in sw) if r][:1]
        if "modal_change" in on and self._modal_change(seed, cand):
            f.reasons.append("modal_change")
        if "key_word_missing" in on:
            f.missing = self._missing_key_words(seed, cand, sw)
            f.seed_lemmas = frozenset(lm for w in _words(seed) for lm in lemmas(w))
        return f

    @staticmethod
    def _repeated(seed: str, cand: str, swaps: list[tuple[str, str]], source: str) -> bool:
        src_lemmas = [lemmas(w) for w in _words(source)]
        for word, syn in swaps:
            others = [ls for w, ls in zip(_words(source), src_lemmas, strict=True) if w != word.lower()]
            syn_words = _words(syn)
            if any(lemmas(s) & ls for s in syn_words for ls in others if s not in STOPWORDS):
                return True
        # a comparison whose second side repeats a word of its first ("... men ... than men")
        cw, sw_ = _words(cand), _words(seed)
        if "than" in cw:
            i = cw.index("than")
            nxt = [w for w in cw[i + 1 : i + 4] if w not in STOPWORDS]
            before = {lm for w in cw[:i] for lm in lemmas(w)}
            if nxt and lemmas(nxt[0]) & before:
                j = sw_.index("than") if "than" in sw_ else -1
                snxt = [w for w in sw_[j + 1 : j + 4] if w not in STOPWORDS] if j >= 0 else []
                seed_before = {lm for w in sw_[:j] for lm in lemmas(w)} if j >= 0 else set()
                if not (snxt and lemmas(snxt[0]) & seed_before):
                    return True
        return False

    @staticmethod
    def _opposed(seed: str, cand: str, swaps: list[tuple[str, str]]) -> bool:
        for word, syn in swaps:
            a, b = dict(_side_of(word)), dict(_side_of(syn.split()[-1] if syn.split() else syn))
            if any(name in b and b[name] != side for name, side in a.items()):
                return True
        sw, cw = _words(seed), _words(cand)
        s_cmp, c_cmp = _comparison(sw), _comparison(cw)
        both = bool(s_cmp and c_cmp and s_cmp[1] and c_cmp[1])
        for name in OPPOSED:
            if both and name in _POLARITY:
                continue
            (sa, sb), (ca, cb) = _sides(sw, name), _sides(cw, name)
            # one side vanished while the other gained: it took its place
            if (sa and not ca and cb > sb) or (sb and not cb and ca > sa):
                return True
        if _lost_comparison(sw, cw):
            return True
        if s_cmp and c_cmp:
            flipped_sign = s_cmp[0] * c_cmp[0] < 0
            for name, (side, _) in s_cmp[1].items():
                if name in c_cmp[1] and (c_cmp[1][name][0] != side) != flipped_sign:
                    return True
        return False

    @staticmethod
    def _synonym_word(word: str, syn: str) -> str | None:
        wtags = lexicon_tags(word)
        if not wtags:
            return None  # the replaced word is unknown to the lexicon: nothing to compare with
        parts = [p for p in re.split(r"[\s-]+", syn.lower()) if p]
        if not parts or any(not lexicon_tags(p) and p not in STOPWORDS for p in parts):
            return "synonym_not_a_word"
        stags = set().union(*(lexicon_tags(p) for p in parts))
        return None if wtags & stags else "synonym_pos_mismatch"

    @staticmethod
    def _modal_change(seed: str, cand: str) -> bool:
        s, c = strip_question_frame(seed), strip_question_frame(cand)
        sm = {k for k, rx in MODALITY.items() if rx.search(s)}
        cm = {k for k, rx in MODALITY.items() if rx.search(c)}
        return bool(cm - sm) or bool(sm and not cm & sm)

    @staticmethod
    def _missing_key_words(seed: str, cand: str, swaps: list[tuple[str, str]]) -> list[str]:
        """Key nouns of the seed with no same-lemma / same-stem word in the candidate and no swap;
        a deontic noun (duty, right) stands in for itself when the candidate keeps its modality."""
        cw = _words(cand)
        c_lemmas = {lm for w in cw for lm in lemmas(w)}
        swapped = {a.lower() for a, _ in swaps}
        c_text = cand.lower().replace("’", "'")
        out: list[str] = []
        for w in dict.fromkeys(_words(_item_region(seed))):
            if len(w) < 3 or w in STOPWORDS or w in GENERIC_NOUNS or w in swapped or not is_key_noun(w):
                continue
            if lemmas(w) & c_lemmas or any(_same_stem(w, x) for x in cw):
                continue
            modal = [rx for rx in MODALITY.values() if rx.search(w) or rx.search(f"the {w} to")]
            if modal and any(rx.search(c_text) for rx in modal):
                continue
            if _ROLE_STANDINS.get(w, frozenset()) & set(cw):
                continue
            out.append(w)
        return out

    def _standins(self, items: list[tuple[Finding, str]]) -> None:
        todo = [(f, cand) for f, cand in items if f.missing]
        if not todo:
            return
        if self.embed is None:
            for f, _ in todo:
                f.reasons.append("key_word_missing")
            return
        # a stand-in is a word the candidate brings in: not one of the seed's own words
        cand_words = {
            id(f): [
                w
                for w in dict.fromkeys(_words(c))
                if w not in STOPWORDS and len(w) > 2 and not lemmas(w) & f.seed_lemmas
            ]
            for f, c in todo
        }
        vocab = sorted(
            {w for f, _ in todo for w in f.missing} | {w for ws in cand_words.values() for w in ws}
        )
        emb = dict(zip(vocab, np.asarray(self.embed(vocab), dtype=np.float32), strict=True))
        for f, _ in todo:
            ws = cand_words[id(f)]
            for m in f.missing:
                best = max((float(emb[m] @ emb[w]) for w in ws), default=-1.0)
                if best < self.t_standin:
                    f.reasons.append("key_word_missing")
                    break


def _same_stem(a: str, b: str, n: int = 5) -> bool:
    """parents / parenting, immigrants / immigration: a shared start of at least n letters."""
    return len(a) >= n and len(b) >= n and a[:n] == b[:n]
