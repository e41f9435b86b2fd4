"""Third-party output, in one place: the progress bars and warnings of transformers ("Loading
weights"), sentence-transformers ("Batches"), datasets, TRL, huggingface_hub and tqdm stay off the
terminal, so that culturellm's own rich progress (culturellm.progress) is the one a user sees;
`culturellm --verbose` lets them through. The CLI calls `quiet_third_party` once at start-up.

Environment variables do it for libraries not imported yet (and for the processes a command starts);
the libraries already imported are told directly. A variable the user set is left as it is.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub, and transformers' bars (they follow it)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",  # any other tqdm bar (tqdm >= 4.66 reads TQDM_* defaults)
}
LIBRARIES = (
    "transformers",
    "sentence_transformers",
    "datasets",
    "trl",
    "peft",
    "accelerate",
    "huggingface_hub",
    "torch",
    "lm_eval",
)
_SET: dict[str, str] = {}  # the variables set here (so that --verbose in the same process undoes them)


def quiet_third_party(verbose: bool = False) -> None:
    """Silence (verbose=False) or let through (True) third-party progress bars, log lines below
    ERROR and Python warnings other than culturellm's own (messages starting "culturellm")."""
    if verbose:
        for key, value in list(_SET.items()):
            if os.environ.get(key) == value:
                del os.environ[key]
            del _SET[key]
        warnings.filters[:] = [f for f in warnings.filters if f not in _FILTERS]
        getattr(warnings, "_filters_mutated", lambda: None)()  # what warnings' own functions call
    else:
        for key, value in QUIET_ENV.items():
            if key not in os.environ:
                os.environ[key] = _SET[key] = value
        warnings.filterwarnings("ignore")  # each call puts its filter first (once)
        warnings.filterwarnings("default", message="culturellm")
    level = logging.NOTSET if verbose else logging.ERROR
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(level)
    _tell_loaded(verbose)


# the filters set above: every warning is ignored except culturellm's own (their message starts
# "culturellm"), as warnings.filterwarnings stores them
_FILTERS = [
    ("default", re.compile("culturellm", re.I), Warning, None, 0),
    ("ignore", None, Warning, None, 0),
]


def _tell_loaded(verbose: bool) -> None:
    """The libraries already imported keep their settings from import time: set them here."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

        (enable_progress_bars if verbose else disable_progress_bars)()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if verbose:
            hf_logging.enable_progress_bar()
            hf_logging.set_verbosity_warning()
        else:
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        if verbose:
            datasets.enable_progress_bars()
        else:
            datasets.disable_progress_bars()
        datasets.logging.set_verbosity(logging.WARNING if verbose else logging.ERROR)
