"""What makes own − best other grow (issue 29): one lever at a time on the cultures with the least room.

    python benchmarks/levers.py --config configs/experiments/levers.toml --out runs/levers
    python benchmarks/levers.py --levers steps --steps 36,108,324         # one lever
    python benchmarks/levers.py --cultures arabic --levers steps --steps 1,2 --limit-seeds 8 \\
        --holdout-questions 2 --limit 1 --out runs/levers-pilot          # a pilot: minutes

Each setting is a `culturellm run` of the config (its cultures: Portuguese/Spanish, English/Turkish
and Arabic; `train = "cultures"`: no One) with one thing changed from the baseline (the config's steps,
verifier-kept rewordings, the preset's LoRA rank): **steps** (`--steps`, default 36,108,324: 1x, 3x,
9x), **data** (`kept`: the rewordings the meaning verifier keeps; `all`: every imported rewording,
`import_filter = "scored"`; `weighted`: all of them with the verifier's P(faithful) as a per-example
loss weight, `[dataset] weight = "verifier"`) and **rank** (`--ranks`, default 4,16,64; alpha 2r, as
the preset's 32 for r 16). A setting that equals another (the baseline is in every lever) is one run,
in OUT/<steps>-<data>-r<rank>/. Runs of the same `[augment]` share one import. Every run resumes
through its stages (kill the script at any time and run it again).

Then, per setting and culture model, own − best other against all nine surveys (agreement and
1 − JSD, paired 95% bootstrap CIs over questions) and the model's own held-out agreement / 1 − JSD /
1 − W1: OUT/levers.md (tables), OUT/levers.json, OUT/levers.png (a curve per lever and measure).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from experiments import (
    MEASURES,
    SHORT,
    add_size_flags,
    augment_source,
    ci,
    merge,
    model_rows,
    own_vs_others,
    run_setting,
    setting_config,
    size_overrides,
    write_outputs,
)

LEVERS = ("steps", "data", "rank")
DATA = {
    "kept": {},
    "all": {"augment": {"import_filter": "scored"}},
    "weighted": {"augment": {"import_filter": "scored"}, "dataset": {"weight": "verifier"}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/experiments/levers.toml"))
    ap.add_argument("--out", type=Path, default=Path("runs/levers"))
    ap.add_argument("--levers", default=",".join(LEVERS), help="comma-separated: steps,data,rank")
    ap.add_argument("--steps", default="36,108,324", help="the steps lever's values")
    ap.add_argument("--ranks", default="4,16,64", help="the rank lever's values")
    ap.add_argument("--data", default=",".join(DATA), help="the data lever's values: kept,all,weighted")
    ap.add_argument("--cultures", help="comma-separated; default: the config's")
    ap.add_argument("--table-only", action="store_true", help="no training: tables of finished runs")
    add_size_flags(ap)
    return ap.parse_args(argv)


def settings(args: argparse.Namespace, base_steps: int, base_rank: int) -> list[tuple[str, Any, dict]]:
    """(lever, value, setting) for every point of every lever; a setting is (steps, data, rank)."""
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    out = []
    for lever in args.levers.split(","):
        if lever == "steps":
            out += [(lever, s, {"steps": s, "data": "kept", "rank": base_rank}) for s in ints(args.steps)]
        elif lever == "data":
            out += [
                (lever, d, {"steps": base_steps, "data": d, "rank": base_rank}) for d in args.data.split(",")
            ]
        elif lever == "rank":
            out += [(lever, r, {"steps": base_steps, "data": "kept", "rank": r}) for r in ints(args.ranks)]
        else:
            raise SystemExit(f"error: unknown lever {lever!r} (steps, data, rank)")
    return out


def name_of(s: dict[str, Any]) -> str:
    return f"{s['steps']}-{s['data']}-r{s['rank']}"


def overrides_of(s: dict[str, Any]) -> dict[str, Any]:
    ft = {"max_steps": s["steps"], "lora_r": s["rank"], "lora_alpha": 2 * s["rank"]}
    return merge(DATA[s["data"]], {"finetune": ft})


def measure(run: Path, cultures: list[str]) -> dict[str, Any]:
    """Per culture model of a finished run: own − best other (all nine surveys) and its own measures."""
    out = {}
    for c in cultures:
        rows = model_rows(run, c)
        if rows:
            out[c] = own_vs_others(rows, c)
    return out


def tables(points: list[dict[str, Any]], cultures: list[str]) -> list[str]:
    lines = []
    for lever in dict.fromkeys(p["lever"] for p in points):
        mine = [p for p in points if p["lever"] == lever]
        for m in ("one_minus_jsd", "majority_agreement"):
            lines += [
                f"**{lever}: own − best other, {SHORT[m]}** (95% CI over questions; vs: the best other)",
                "",
            ]
            lines += [
                "| " + lever + " | " + " | ".join(cultures) + " |",
                "| --- |" + " --- |" * len(cultures),
            ]
            for p in mine:
                cells = []
                for c in cultures:
                    d = p["result"].get(c)
                    cells.append(f"{ci(d['ci'][m], True)} vs {d[f'best_other_{m}']}" if d else "–")
                lines.append(f"| {p['value']} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += [
            f"**{lever}: the culture model on its own held-out items** (agreement / 1 − JSD / 1 − W1)",
            "",
        ]
        lines += ["| " + lever + " | " + " | ".join(cultures) + " |", "| --- |" + " --- |" * len(cultures)]
        for p in mine:
            cells = [" / ".join(f"{p['result'][c]['own'][m]['mean']:.3f}" for m in MEASURES)
                     if c in p["result"] else "–" for c in cultures]  # fmt: skip
            lines.append(f"| {p['value']} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def plot(points: list[dict[str, Any]], cultures: list[str], path: Path) -> Path:
    """One panel per lever and measure: own − best other against the lever's value, a line per culture
    with its 95% CI as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levers = list(dict.fromkeys(p["lever"] for p in points))
    fig, axes = plt.subplots(2, len(levers), figsize=(4.2 * len(levers), 6.5), squeeze=False)
    for j, lever in enumerate(levers):
        mine = [p for p in points if p["lever"] == lever]
        xs = list(range(len(mine)))
        for i, m in enumerate(("one_minus_jsd", "majority_agreement")):
            ax = axes[i][j]
            for k, c in enumerate(cultures):
                got = [
                    (x, p["result"][c]["ci"][m]) for x, p in zip(xs, mine, strict=True) if c in p["result"]
                ]
                if not got:
                    continue
                off = [x + (k - len(cultures) / 2) * 0.04 for x, _ in got]
                ys = [d["mean"] for _, d in got]
                err = [[d["mean"] - d["lo"] for _, d in got], [d["hi"] - d["mean"] for _, d in got]]
                ax.errorbar(off, ys, yerr=err, marker="o", capsize=3, label=c)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(xs, [str(p["value"]) for p in mine])
            ax.set_xlabel(lever)
            ax.set_ylabel(f"own − best other, {SHORT[m]}")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = setting_config(args.config, size_overrides(args))
    cultures = args.cultures.split(",") if args.cultures else list(base.cultures)
    common = merge(size_overrides(args), {"cultures": cultures})
    points, done = [], {}
    for lever, value, s in settings(args, base.finetune.max_steps or 36, base.finetune.lora_r):
        out = args.out / name_of(s)
        if not args.table_only:
            cfg = setting_config(args.config, merge(common, overrides_of(s)))
            t = time.monotonic()
            run_setting(cfg, out, augment_source(done, cfg, out), progress=not args.no_progress)
            print(f"{out}: done ({time.monotonic() - t:.0f} s this call)", flush=True)
        points.append({"lever": lever, "value": value, "run": str(out), "result": measure(out, cultures)})
    if not any(p["result"] for p in points):
        print(f"{args.out}: no finished run to tabulate", file=sys.stderr)
        return 2
    write_outputs(args.out, "levers", tables(points, cultures), points)
    print(f"wrote {plot(points, cultures, args.out / 'levers.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
