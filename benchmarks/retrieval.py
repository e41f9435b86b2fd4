"""A retrieval baseline against fine-tuning (issue 29): does a culture model beat the base model given
the culture's own survey answers to the most similar training questions (ValuesRAG's idea)?

    python benchmarks/retrieval.py --config configs/experiments/nine-cultures.toml
    python benchmarks/retrieval.py --config configs/experiments/nine-cultures-small.toml \\
        --cultures arabic --limit-seeds 8 --holdout-questions 2 --max-steps 2 --limit 1 \\
        --out runs/retrieval-pilot                                                   # a pilot

Runs (resumes) the config as a `culturellm run` with `[align] retrieve = K` (`--k`, default the
config's, else 3): beside base, base + culture prompt and the culture model, the run aligns
`base+retrieval` (the culture prompt plus the culture's survey answers to the K training seed
questions nearest each asked one, MiniLM cosine; culturellm.evaluate.retrieval) and
`culturellm+retrieval` (the culture model with the same context). On an existing finished run only
the alignment of the two new variants is computed. Then per culture, on held-out questions (where
retrieval cannot copy the asked question's answers) and on held-out wordings of trained questions:
agreement and 1 − JSD with 95% CIs over questions, and the paired differences culture model − base +
retrieval and culture model + retrieval − culture model: OUT/retrieval.md, OUT/retrieval.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from experiments import (
    add_size_flags,
    ci,
    merge,
    model_rows,
    run_setting,
    setting_config,
    size_overrides,
    write_outputs,
)

MODELS = ("base+culture-prompt", "base+retrieval", "culturellm", "culturellm+retrieval")
KINDS = {
    "heldout_question": "held-out questions",
    "heldout_variant": "held-out wordings",
    "seed": "every seed question (the split holds out fewer than [align] min_heldout items)",
}
PAIRS = (("culturellm", "base+retrieval"), ("culturellm+retrieval", "culturellm"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/experiments/nine-cultures.toml"))
    ap.add_argument("--out", type=Path, help="the run directory (default runs/<the config's name>)")
    ap.add_argument("--k", type=int, help="questions retrieved per asked one (default: the config's, else 3)")
    ap.add_argument("--cultures", help="comma-separated; default: the config's")
    ap.add_argument("--table-only", action="store_true", help="no run: the tables of a finished one")
    add_size_flags(ap)
    return ap.parse_args(argv)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from culturellm.evaluate.bootstrap import summary_cis

    return summary_cis(rows, ("agree", "one_minus_jsd")) if rows else {}


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """a − b on the same items (same question and wording), paired over questions."""
    from culturellm.evaluate.bootstrap import difference_ci

    kb = {(r["question_id"], r["text"]): r for r in b}
    common = [(r, kb[(r["question_id"], r["text"])]) for r in a if (r["question_id"], r["text"]) in kb]
    return {
        m: difference_ci([float(x[m]) for x, _ in common], [float(y[m]) for _, y in common],
                         [str(x["question_id"]) for x, _ in common])
        for m in ("agree", "one_minus_jsd")
    }  # fmt: skip


def culture_result(run: Path, culture: str) -> dict[str, Any]:
    rows = {m: model_rows(run, culture, m) for m in MODELS}
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = {m: [r for r in rs if r["kind"] == kind] for m, rs in rows.items()}
        if not any(mine.values()):
            continue
        out[kind] = {
            "models": {m: summary(rs) for m, rs in mine.items()},
            "pairs": {f"{a} − {b}": paired(mine[a], mine[b]) for a, b in PAIRS if mine[a] and mine[b]},
        }
    return out


def tables(results: dict[str, Any]) -> list[str]:
    lines = []
    for kind, title in KINDS.items():
        if not any(kind in res for res in results.values()):
            continue
        for m, name in (("one_minus_jsd", "1 − JSD"), ("agree", "agreement")):
            heads = [*MODELS, *(f"{a} − {b}" for a, b in PAIRS)]
            lines += [f"**{name} on {title}** (95% CIs over questions)", ""]
            lines += ["| culture | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
            for c, res in results.items():
                if kind not in res:
                    continue
                r = res[kind]
                cells = [ci(r["models"][x].get(m)) for x in MODELS]
                cells += [ci(r["pairs"].get(f"{a} − {b}", {}).get(m), True) for a, b in PAIRS]
                lines.append(f"| {c} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = size_overrides(args)
    base = setting_config(args.config, sizes)
    cultures = args.cultures.split(",") if args.cultures else list(base.cultures)
    k = args.k or base.align.retrieve or 3
    cfg = setting_config(args.config, merge(sizes, {"cultures": cultures, "align": {"retrieve": k}}))
    out = args.out or Path("runs") / cfg.name
    if not args.table_only:
        run_setting(cfg, out, progress=not args.no_progress)
    results = {c: culture_result(out, c) for c in cultures}
    write_outputs(out, "retrieval", [f"retrieve:{k}, run {out}", "", *tables(results)], results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
