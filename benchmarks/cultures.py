"""Nine cultures and CultureLLM-One told apart (issue 23): the tables of a finished nine-cultures run.

    culturellm run configs/experiments/nine-cultures-small.toml \
        --import-file ../shared/data/release-rewordings/rewordings.jsonl
    python benchmarks/cultures.py runs/nine-cultures-small [--out docs/results-cultures.md]

Reads RUN/eval/align_matrix.json (every culture model, One and the base model against every culture's
survey on the run's held-out items, with 95% bootstrap CIs over questions) and RUN/eval/<culture>/
align.jsonl (base, base + culture prompt, the culture's model and One, aligned with that culture; with
`[align] retrieve` also base + retrieval and the culture model + retrieval) and
prints markdown: the 1 − JSD matrix; per culture model own survey minus best other survey (agreement,
1 − JSD, 1 − W1, each with its paired CI — on the items both surveys answered, shown apart when the
other survey answered fewer — and whether the CI excludes 0); per culture the baselines,
its own model and One, and One minus own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MEASURES = ("majority_agreement", "one_minus_jsd", "one_minus_wasserstein")
SHORT = {"majority_agreement": "agreement", "one_minus_jsd": "1 − JSD", "one_minus_wasserstein": "1 − W1"}


def _ci(d: dict[str, Any] | None, signed: bool = False) -> str:
    if not d:
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(d['mean'])} [{f.format(d['lo'])}, {f.format(d['hi'])}]"


def _cell(value: float, ci: dict[str, Any] | None) -> str:
    """One matrix cell: the value, and its 95% CI over questions where the run recorded one."""
    return f"{value:.3f} [{ci['lo']:.2f}, {ci['hi']:.2f}]" if ci else f"{value:.3f}"


def matrix_table(m: dict[str, Any], measure: str = "one_minus_jsd") -> list[str]:
    """The model x culture matrix of one measure; each cell with its bootstrap CI (resampling questions)."""
    cultures = m["cultures"]
    out = [f"**{SHORT[measure]}** (rows: models, columns: surveys; {m.get('items')}; 95% CIs)", ""]
    out += ["| model | " + " | ".join(cultures) + " |", "| --- |" + " --- |" * len(cultures)]
    cis = {(c["model"], c["culture"]): c.get("ci") or {} for c in m.get("cells", [])}
    for i, model in enumerate(m["models"]):
        cells = [
            _cell(v, cis.get((model, c), {}).get(measure))
            for c, v in zip(cultures, m[measure][i], strict=True)
        ]
        out.append(f"| {model} | " + " | ".join(cells) + " |")
    return [*out, ""]


def own_table(m: dict[str, Any]) -> list[str]:
    out = [
        "| model | " + " | ".join(f"own − best other: {SHORT[x]}" for x in MEASURES) + " | 1 − JSD CI > 0 |"
    ]
    out.append("| --- |" + " --- |" * (len(MEASURES) + 1))
    for model, d in m.get("own_minus_best_other", {}).items():
        cells = []
        for x in MEASURES:
            ci, other = (d.get("ci") or {}).get(x), d.get(f"best_other_{x}")
            if not ci:
                cells.append(f"{d[x]:+.3f} vs {other}")
            elif abs(ci["mean"] - d[x]) > 1e-9:  # the other survey answered fewer items: paired on those
                cells.append(f"{d[x]:+.3f} vs {other} (the {ci['n']} items both answered: {_ci(ci, True)})")
            else:
                cells.append(f"{_ci(ci, signed=True)} vs {other}")
        ci = (d.get("ci") or {}).get("one_minus_jsd")
        out.append(f"| {model} | " + " | ".join(cells) + f" | {'yes' if ci and ci['lo'] > 0 else 'no'} |")
    return [*out, ""]


def per_culture(run: Path, cultures: list[str]) -> list[str]:
    from culturellm.jsonio import read_jsonl

    out = ["| culture | model | agreement | 1 − JSD | 1 − W1 |", "| --- | --- | --- | --- | --- |"]
    one_vs_own = []
    for c in cultures:
        path = run / "eval" / c / "align.jsonl"
        if not path.exists():
            continue
        rows = {r["model"]: r for r in read_jsonl(path)}
        for name in ("base", "base+culture-prompt", "base+retrieval", "culturellm", "culturellm+retrieval",
                     "culturellm-one"):  # fmt: skip
            r = rows.get(name)
            if r:
                ci = r.get("ci") or {}
                out.append(f"| {c} | {name} | " + " | ".join(_ci(ci.get(x)) for x in MEASURES) + " |")
        if "culturellm" in rows and "culturellm-one" in rows:
            d = rows["culturellm-one"]["one_minus_jsd"] - rows["culturellm"]["one_minus_jsd"]
            one_vs_own.append((c, d))
    out.append("")
    if one_vs_own:
        wins = sum(d > 0 for _, d in one_vs_own)
        out.append("One minus own model, 1 − JSD: " + ", ".join(f"{c} {d:+.3f}" for c, d in one_vs_own)
                   + f" (One higher in {wins} of {len(one_vs_own)})")  # fmt: skip
    return [*out, ""]


def survey_room(run: Path, m: dict[str, Any]) -> list[str]:
    """How far apart the surveys themselves are on each culture's held-out items: a model that answered
    exactly with culture A's survey would score 1 − JSD 1 on A and `1 − JSD(A, B)` on B, so
    1 − max over B of that is the most own − best other can be. Where it is small, the surveys agree
    and no model can tell the cultures apart on these items; a survey close to all the others on average
    (a central one) is the one a model that learnt only "a survey-like answer" matches best."""
    from culturellm.evaluate.distributions import similarity
    from culturellm.jsonio import read_jsonl
    from culturellm.seeds import seed_set

    cultures = list(m["cultures"])
    surveys = {c: {s.question_id: s.distribution for s in seed_set(c)} for c in cultures}
    out = ["| culture | nearest other survey | 1 − JSD of the two surveys | room: own − best other at most "
           "| mean 1 − JSD to the other surveys | measured own − best other |",
           "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for c in cultures:
        path = run / "eval" / c / "align" / "culturellm" / f"{c}.jsonl"
        if not path.exists():
            continue
        qids = [r["question_id"] for r in read_jsonl(path)]
        near = {}
        for o in (x for x in cultures if x != c):
            sims = [similarity(surveys[c][q], surveys[o][q])["one_minus_jsd"]
                    for q in qids if q in surveys[o] and sum(surveys[o][q].values()) > 0]  # fmt: skip
            if sims:
                near[o] = sum(sims) / len(sims)
        if not near:
            continue
        other = max(near, key=near.__getitem__)
        measured = m.get("own_minus_best_other", {}).get(f"culturellm-{c}", {}).get("one_minus_jsd")
        shown = f"{measured:+.3f}" if measured is not None else "–"
        mean = sum(near.values()) / len(near)
        out.append(f"| {c} | {other} | {near[other]:.3f} | {1 - near[other]:.3f} | {mean:.3f} | {shown} |")
    return [*out, ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished run directory (runs/nine-cultures-small)")
    ap.add_argument("--out", type=Path, help="also write the markdown here")
    args = ap.parse_args(argv)
    path = args.run / "eval" / "align_matrix.json"
    if not path.exists():
        print(f"{path}: not found (run the experiment first)", file=sys.stderr)
        return 2
    m = json.loads(path.read_text())
    lines = [*matrix_table(m), *matrix_table(m, "majority_agreement"), *own_table(m)]
    lines += per_culture(args.run, list(m["cultures"]))
    lines += survey_room(args.run, m)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
