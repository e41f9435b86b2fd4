"""AugmentConfig: every knob of the augmentation pipeline, with defaults and why (docs/augmentation.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from culturellm.errors import UnknownNameError
from culturellm.meaning import DEFAULT_T_STANDIN, MEANING_CHECKS
from culturellm.settings import Flag, StageConfig, Unkeyed, comma_list

# Default thresholds, chosen by measurement (benchmarks/augment.py --only calibrate; numbers in
# docs/augmentation.md) on 80 hand-written pairs of WVS-style statements with the bundled
# all-MiniLM-L6-v2: real paraphrases score 0.62-0.94, topic changes 0.50-0.83, while meaning flips
# (negation, swapped subject/object, antonym) score 0.73-0.998 -- no cosine threshold catches those,
# which is why the filter also bounds near-duplicates (>= 0.97) and checks negation counts, and why
# synonym swaps never touch negations, quantifiers or modals. T1 maximises TPR - 2 FPR (a false accept
# trains a wrong-meaning sentence with the seed's answer; a false reject only costs a re-ask).
# T2 = T1: every training sample passes the same same-meaning bar, whatever step made it.
DEFAULT_T1 = 0.80
DEFAULT_T2 = 0.80


SynonymScope = Literal["sentence", "seed"]

# Which seeds are augmented: not part of the records' fingerprint (a run that augments more seeds
# later resumes the same records).
# The import options of a run: generated records do not depend on them (the run's augment key hashes
# its whole [augment] section and the imported file's sha256).
IMPORTED = Unkeyed("not part of generated records; a run's augment key hashes the section and the file")
# `culturellm augment` generates: the import options are a run's ([augment] in its TOML) and flags of
# `culturellm augment import` only (IMPORT_FIELDS; --source/--filter are their older short names).
IMPORT_SOURCE_FLAG = Flag("--import-source", "--source", none=True)
IMPORT_FILTER_FLAG = Flag("--import-filter", "--filter", none=True)
# The import filter when none is named: a run's, `culturellm augment import`'s and import_release()'s.
DEFAULT_IMPORT_FILTER = "verifier"
# The fields an import reads (`importer.import_release`): the flags of `culturellm augment import`.
IMPORT_FIELDS = (
    "limit_seeds", "questions", "t1", "checks", "verifier_threshold", "t_standin",
    "import_source", "import_filter",
)  # fmt: skip
SELECTION = Unkeyed("selects the seeds; a run that augments more seeds later resumes the same records")


class AugmentConfig(StageConfig):
    """Configuration of `augment()`. Part of the manifest, so a run says how it was made. Each field
    is a flag of `culturellm augment` and in the records' fingerprint unless marked Unkeyed."""

    limit_seeds: Annotated[int | None, SELECTION] = Field(
        None, ge=1, description="augment only the first N seed questions"
    )
    questions: Annotated[list[str] | None, Flag("--question", "-q"), SELECTION] = Field(
        None, description="augment only these seed question ids (repeatable)"
    )
    n: int = Field(5, ge=0, description="paraphrases kept per seed (step 1)")
    m: int = Field(10, ge=0, description="synonym variants kept per seed (step 2), spread over paraphrases")
    k: int | None = Field(
        None, ge=1, description="rewrites asked for per paraphrase request (default: n + 2, at least 3)"
    )
    retries: int = Field(3, ge=0, description="re-asks (R) for seeds with fewer than n paraphrases kept")
    t1: float = Field(
        DEFAULT_T1, ge=-1.0, le=1.0, description="min cosine(paraphrase, seed); of an imported wording too"
    )
    t2: float = Field(DEFAULT_T2, ge=-1.0, le=1.0, description="min cosine(synonym variant, seed)")
    t_word: float | None = Field(
        0.45,
        ge=-1.0,
        le=1.0,
        description="min cosine(word, proposed synonym) (None: off); drops unrelated 'synonyms'",
    )
    dup_threshold: float = Field(
        0.97, gt=0.0, le=1.0, description="a paraphrase this close to an already kept text is a duplicate"
    )
    check_negation: bool = Field(
        True, description="reject variants whose count of negation words differs from the seed's"
    )
    checks: Annotated[list[Literal[MEANING_CHECKS]], Flag(parse=comma_list)] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(MEANING_CHECKS),
        description="lexical meaning checks run on every paraphrase and synonym variant, "
        "comma-separated ('none' or []: no check)",
    )
    meaning_filter: Literal["checks", "verifier"] = Field(
        "verifier",
        description="what screens every paraphrase and synonym variant after the similarity filter: "
        "the meaning gate (verifier: culturellm.meaning.verifier, fitted on every kind of labelled "
        "rewording; loads the bundled model for its fluency features; its threshold picked by the "
        "augmenter's spec), or the lexical checks (--checks). Measured in docs/augmentation.md",
    )
    verifier_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="with --meaning-filter verifier: keep a variant when P(changed) is below this "
        "(default: the shipped threshold of the augmenter's kind of output, said in the manifest's "
        "meaning_gate; the curve in docs/augmentation.md)",
    )
    t_standin: float = Field(
        DEFAULT_T_STANDIN,
        ge=-1.0,
        le=1.0,
        description="min cosine(missing key word, a new word of the candidate) for it to stand in",
    )
    judge: str | None = Field(
        None,
        description="chat model spec asked, both ways, whether candidate and seed mean the same "
        "(a candidate is kept only when both answers are yes); None: no judge",
    )
    judge_band: Annotated[list[float] | None, Flag(parse=comma_list)] = Field(
        None,
        description="with --meaning-filter verifier and --judge: LOW,HIGH bounds of P(changed) where the "
        "verifier is unsure: below LOW a variant is kept and from HIGH up rejected without asking the "
        "judge; in between (the unsure band) the judge alone decides, and --verifier-threshold is not "
        "used. Default: the shipped band, chosen on the training folds (docs/augmentation.md); 0,1: the "
        "judge sees every variant",
    )
    synonym_requests: SynonymScope = Field(
        "sentence",
        description="one synonym request per kept paraphrase (sentence), or one per seed covering the "
        "content words of the seed and all its paraphrases (seed: fewer requests)",
    )
    synonyms_per_word: int = Field(3, ge=1, description="synonyms asked for per content word")
    max_words: int = Field(6, ge=1, description="content words per sentence sent to the synonym request")
    max_combined: int = Field(2, ge=1, description="largest number of words swapped in one variant")
    max_candidates: int = Field(
        64, ge=1, description="synonym variants built (then embedded) per paraphrase, at most"
    )
    temperature: float = Field(0.8, ge=0.0, description="sampling temperature of the LLM")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling: top-p of the LLM")
    max_tokens_paraphrase: int | None = Field(
        None, ge=16, description="token budget of a paraphrase answer (default 16 + 28 per rewrite asked)"
    )
    max_tokens_synonyms: int | None = Field(
        None, ge=16, description="token budget of a synonym answer (default 16 + 18 per word asked)"
    )
    max_tokens_translate: int = Field(160, ge=16, description="token budget of a translation answer")
    batch_size: int = Field(8, ge=1, description="seeds processed together (one LLM batch per step)")
    translate: str | None = Field(None, description="also translate into this language (step 3)")
    t3: float = Field(
        0.80, ge=-1.0, le=1.0, description="min cosine(back-translation, source) for a translation"
    )
    seed: int = Field(0, description="random seed (sampling seeds are derived from it)")
    import_file: Annotated[Path | None, IMPORTED] = Field(
        None,
        description="`culturellm run`: import this file of rewordings in the release's format "
        "(`culturellm augment import`) instead of generating them (None: generate)",
    )
    import_source: Annotated[str | None, IMPORTED, IMPORT_SOURCE_FLAG] = Field(
        None,
        description="with import_file: only its lines whose `source` is this release file, e.g. "
        "new_WVQ_1000 (None: every line)",
    )
    import_filter: Annotated[str, IMPORTED, IMPORT_FILTER_FLAG] = Field(
        DEFAULT_IMPORT_FILTER,
        description="with import_file: the filter run on each imported rewording after the similarity "
        "and duplicate checks: verifier (the meaning gate, its threshold verifier_threshold, else the "
        "default one), scored (the gate's P(changed) on every record, none rejected: for [dataset] "
        "weight = verifier), checks (the lexical meaning checks), none, or a registered filter's name",
    )

    @field_validator("judge_band")
    @classmethod
    def _band(cls, band: list[float] | None) -> list[float] | None:
        if band is not None and (len(band) != 2 or not 0.0 <= band[0] <= band[1] <= 1.0):
            raise ValueError("two numbers LOW,HIGH with 0 <= LOW <= HIGH <= 1")
        return band

    def import_filter_options(self) -> dict[str, Any]:
        """The options an import filter is made with (`augment.importer.import_filter`)."""
        return {
            "checks": self.checks,
            "t_standin": self.t_standin,
            "verifier_threshold": self.verifier_threshold,
        }

    def fingerprint(self) -> dict[str, Any]:
        """What decides the records (the seed selection does not): stored beside them for resuming.
        The derived values are in it as used (`k`, `max_tokens_paraphrase`), never written back into
        the config, so a copied config.toml with another `n` derives them again."""
        return self.keyed() | {
            "k": self.rewrites_per_request,
            "max_tokens_paraphrase": self.paraphrase_tokens,
        }

    def select(self, seeds: Sequence[Any]) -> list[Any]:
        """The seeds to augment: `questions` (in seed order), then the first `limit_seeds`."""
        out = list(seeds)
        if self.questions:
            known = {q.id for q in out}
            bad = [q for q in self.questions if q not in known]
            if bad:
                raise UnknownNameError(
                    f"unknown question id(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
                )
            out = [q for q in out if q.id in set(self.questions)]
        return out[: self.limit_seeds] if self.limit_seeds else out

    @property
    def rewrites_per_request(self) -> int:
        """`k`, else derived from `n`: n + 2, at least 3."""
        return int(self.k or max(self.n + 2, 3))

    @property
    def paraphrase_tokens(self) -> int:
        """`max_tokens_paraphrase`, else derived: 16 + 28 per rewrite asked."""
        return int(self.max_tokens_paraphrase or 16 + 28 * self.rewrites_per_request)
