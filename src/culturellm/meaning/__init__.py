"""Whether a rewording means what its seed means: the lexical checks (`checks`, their word lists in
`words`), the pair features and the fitted verifier (`features`, `verifier`), the judge and its routing
(`judge`), and stored verdicts (`verdicts`). The offline fitting of the verifier (`fit`, scikit-learn)
is imported only by `scripts/fit_verifier.py`, the benchmarks and the tests.

This module holds the names a config needs without loading any check (numpy stays unloaded).
"""

from __future__ import annotations

# The lexical meaning checks by name (culturellm.meaning.checks; measured by benchmarks/augment.py
# --only chain), in the order they run.
MEANING_CHECKS = ("repeated_word", "opposed_words", "synonym_word", "modal_change", "key_word_missing")
# min cosine(missing key word, a new word of the candidate) for it to stand in: the default of
# `culturellm augment --t-standin` and of the verifier's check columns.
DEFAULT_T_STANDIN = 0.33
