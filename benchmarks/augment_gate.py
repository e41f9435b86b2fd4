"""The meaning gate on every kind of labelled data (issue #30), held out, per kind, with 95 % bootstrap
CIs resampling questions: changed among kept and faithful kept, for the checks chain, the old shipped
verifier (fitted on the 550 GPT-4 pairs of release_labels.jsonl: on those its numbers are its training
fit, marked *), the 20 features refitted, the pair head alone, the two combined (the gate; fitted on
the GPT-4 pairs, a threshold and calibration per kind) and the gate AND the lexical checks (the
default meaning filter). Two schemes (culturellm.meaning.gatefit): folds by question (every kind in
training), and leave-one-kind-out (the kind's pairs scored by a gate fitted on the other kinds only,
at the default threshold).

    python benchmarks/augment.py --only gate [--json out.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD_PARAMS = ROOT / "benchmarks" / "results" / "verifier_old.json"
TARGETS = (
    "targets: GPT-4 changed among kept <= 0.05 and faithful kept >= 0.60; bundled changed among kept <= 0.10"
)


def _rows_of(z: dict, data: dict) -> dict[str, np.ndarray]:
    """Per gate that needs no refit, its verdicts on the pooled pairs (dataset order)."""
    from augment import _old_chain_keep
    from culturellm.meaning.verifier import Verifier, VerifierParams

    old = VerifierParams.from_dict(json.loads(OLD_PARAMS.read_text(encoding="utf-8")), str(OLD_PARAMS))
    v = Verifier(None, lm=object(), params=old)
    chain = np.concatenate([_old_chain_keep(z, n, d) for n, d in data.items()])
    shipped_old = np.concatenate([v.probabilities(z[f"{n}_x"]) < old.threshold for n in data])
    return {"checks chain": chain, "old verifier": shipped_old}


def _show(title: str, table: dict[str, dict[str, dict]], trained_on: set[str]) -> None:
    print(f"\n== {title}")
    print(f"{'gate':<18} {'kind':<17} {'kept':>10} {'changed among kept':>24} {'faithful kept':>22}")
    for gate, kinds in table.items():
        for kind, r in kinds.items():
            kc, fk = r["kept_changed_ci"], r["faithful_kept_ci"]
            star = "*" if (gate, kind) in trained_on else " "
            print(f"{gate:<18} {kind:<17}{star}{r['kept']:>4}/{r['n']:<5} "
                  f"{r['kept_changed']:>7.3f} [{kc[0]:.3f},{kc[1]:.3f}] "
                  f"{r['faithful_kept']:>7.3f} [{fk[0]:.3f},{fk[1]:.3f}]")  # fmt: skip


def gate_benchmark() -> dict:
    sys.path.insert(0, str(ROOT / "scripts"))
    import fit_verifier
    from culturellm.meaning.fit import auc, bootstrap
    from culturellm.meaning.gatefit import Pooled, heldout, oof_proba, per_kind

    data = fit_verifier.datasets()
    z = fit_verifier.features()
    d = Pooled.of(data, z)
    kinds = [str(k) for k in dict.fromkeys(d.kinds)]
    print(f"\n== labelled pairs: {len(d.y)} ({', '.join(f'{k} {int((d.kinds == k).sum())}' for k in kinds)})")
    print("grouped out-of-fold AUC per kind (folds by question, every kind in training):")
    for what in ("features", "head", "combined"):
        p = oof_proba(d, what)
        per = "  ".join(f"{k} {auc(p[d.kinds == k], d.y[d.kinds == k]):.3f}" for k in kinds)
        print(f"  {what:<9} all {auc(p, d.y):.3f}  {per}")
    target = fit_verifier.TARGETS
    res: dict = {"n": {k: int((d.kinds == k).sum()) for k in kinds}, "targets": target}
    fixed = _rows_of(z, data)
    n_release = len(data["release"].y)
    trained_on = {("old verifier", "gpt4")}
    for scheme, title in (
        ("question", "held out by question (GroupKFold 5 on q_id; thresholds nested, one per kind)"),
        ("kind", "held out by question AND kind (a kind scored by a gate fitted on the other kinds only)"),
    ):
        table: dict[str, dict] = {}
        for gate, keep in fixed.items():
            table[gate] = per_kind(keep, d, kinds)
        if "old verifier" in table and scheme == "question":  # its fit data apart: the 933 it never saw
            m = np.zeros(len(d.y), dtype=bool)
            m[n_release : n_release + len(data["more"].y)] = True
            table["old verifier"]["gpt4 unseen (933)"] = bootstrap(
                fixed["old verifier"][m], d.y[m], d.groups[m]
            )
        for what, label in (
            ("features", "features (refit)"),
            ("head", "pair head"),
            ("combined", "combined"),
        ):
            keep, prob = heldout(d, what, target, scheme)
            table[label] = per_kind(keep, d, kinds)
            if what == "combined":
                table["gate AND checks"] = per_kind(keep & fixed["checks chain"], d, kinds)  # the default
                for k in kinds:
                    m = (d.kinds == k) & keep
                    table[label][k]["mean_p_kept"] = round(float(prob[m].mean()), 4) if m.any() else None
        _show(title, table, trained_on)
        res[scheme] = table
    print(f"\n(* the old verifier's fit data: its training fit, not held out)  {TARGETS}")
    print("mean P(changed) over kept (the estimate `culturellm augment` prints) vs the true share, combined:")
    for k, r in res["question"]["combined"].items():
        print(f"  {k:<17} estimated {r.get('mean_p_kept')}  true {r['kept_changed']}")
    return res
