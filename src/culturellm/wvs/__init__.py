"""WVS seed layer: the 50 seed questions, reading WVS wave-7 microdata (.csv/.sav/.dta), aggregating
answers per country (valid codes only, optional W_WEIGHT), stored aggregates (bundled + user-imported)
and per-culture seed sets."""

from culturellm.wvs.aggregate import CountryAnswers, aggregate, combine, majority_code, mean_code
from culturellm.wvs.answers import (
    available_countries,
    load_answers,
    merge_user_answers,
    read_answers,
    write_answers,
)
from culturellm.wvs.microdata import read_microdata
from culturellm.wvs.questions import Question, load_questions, questions_by_id
from culturellm.wvs.seeds import Seed, seed_set

__all__ = [
    "CountryAnswers",
    "Question",
    "Seed",
    "aggregate",
    "available_countries",
    "combine",
    "load_answers",
    "load_questions",
    "majority_code",
    "mean_code",
    "merge_user_answers",
    "questions_by_id",
    "read_answers",
    "read_microdata",
    "seed_set",
    "write_answers",
]
