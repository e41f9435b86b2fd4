"""Build the bundled WVS aggregates (src/culturellm/data/wvs_answers.jsonl) from WVS microdata.

    python scripts/build_wvs_answers.py ../shared/data/wvs/wave7 src/culturellm/data/wvs_answers.jsonl

Arguments: microdata files and/or directories (.csv, .sav, .dta), then the output path. The output is
deterministic: the same microdata always gives a byte-identical file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from culturellm.wvs import aggregate, read_microdata, write_answers


def build(inputs: list[Path], output: Path) -> int:
    """Aggregate `inputs` into `output`; returns the number of (country, question) rows written."""
    answers = aggregate(read_microdata(inputs))
    write_answers(output, answers)
    return len(answers)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", type=Path, help="WVS microdata files or directories")
    ap.add_argument("output", type=Path, help="output JSONL path")
    args = ap.parse_args(argv)
    n = build(args.inputs, args.output)
    print(f"wrote {n} country x question aggregates to {args.output}")


if __name__ == "__main__":
    main()
