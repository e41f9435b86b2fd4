"""WVS seed layer: the 50 seed questions, reading WVS wave-7 microdata (.csv/.sav/.dta), aggregating
answers per country (valid codes only, optional W_WEIGHT), stored aggregates (bundled + user-imported)
and the WVS country table (`countries`). Per-culture seed sets are `culturellm.seeds`, above this
package and `culturellm.cultures`."""

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

__all__ = [
    "CountryAnswers",
    "Question",
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
    "write_answers",
]
