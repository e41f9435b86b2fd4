"""The judge (culturellm.meaning.judge) on the labelled release rewordings, alone and where the verifier
is unsure: `python benchmarks/augment.py --only judge [--judge SPEC] [--judge-questions N]`.

Every labelled pair is judged (2 scoring requests, both directions) through the response cache, in
chunks, so an interrupted run resumes where it stopped and a rerun is free. The verifier's numbers are
held out by question (GroupKFold 5 on q_id): threshold and unsure band nested in each training part.
CIs resample questions (culturellm.meaning.fit.bootstrap).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 32  # pairs per scoring call: what an interrupted run has cached


def judge_margins(spec: str, pairs: list[tuple[str, str]], **options: Any) -> tuple[np.ndarray, dict]:
    """(n, 2) margins log P(Yes) - log P(No), forward and backward, and the model's usage."""
    from culturellm.llm import load_model
    from culturellm.meaning.judge import Judge

    judge = Judge(load_model(spec, **options))
    out, t0 = np.zeros((len(pairs), 2)), time.perf_counter()
    for i in range(0, len(pairs), CHUNK):
        vs = judge.verdicts(pairs[i : i + CHUNK])
        out[i : i + len(vs)] = [(v.forward, v.backward) for v in vs]
        print(f"  judged {i + len(vs)}/{len(pairs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return out, judge.model.usage.as_dict()


def sample_questions(groups: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    """Mask of the pairs of `n` questions drawn with `seed` (None: every pair)."""
    uniq = np.unique(groups)
    if n is None or n >= len(uniq):
        return np.ones(len(groups), dtype=bool)
    pick = np.random.default_rng(seed).choice(uniq, n, replace=False)
    return np.isin(groups, pick)


def _row(label: str, keep: np.ndarray, y: np.ndarray, groups: np.ndarray, requests: int) -> dict:
    from culturellm.meaning.fit import bootstrap

    r = bootstrap(keep, y, groups)
    r["judge_requests"] = int(requests)
    r["judge_requests_per_kept"] = round(requests / int(keep.sum()), 3) if keep.any() else None
    per = "-" if r["judge_requests_per_kept"] is None else f"{r['judge_requests_per_kept']:.2f}"
    kc, fk = r["kept_changed_ci"], r["faithful_kept_ci"]
    print(f"{label:<30} {r['kept']:>4}/{r['n']:<4} "
          f"{r['kept_changed']:>6.3f} [{kc[0]:.3f},{kc[1]:.3f}] "
          f"{r['faithful_kept']:>6.3f} [{fk[0]:.3f},{fk[1]:.3f}] "
          f"{requests:>6} {per:>8}")  # fmt: skip
    return r


def judge_benchmark(spec: str = "bundled", questions: int | None = None, seed: int = 0) -> dict:
    """Verifier alone, judge alone, verifier + judge where unsure: kept_changed and faithful_kept with
    CIs, judge scoring requests and requests per kept sample (see module docstring)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import fit_verifier
    from culturellm.meaning.fit import auc, load_labelled, nested_band, nested_keep

    rel = load_labelled(fit_verifier.LABELS)
    x = np.asarray(np.load(fit_verifier.CACHE)["release_x"])  # the features the verifier was fitted on
    keep_v, _ = nested_keep(x, rel.y, rel.groups)
    route, bands = nested_band(x, rel.y, rel.groups)
    sel = sample_questions(rel.groups, questions, seed)
    pairs = [p for p, s in zip(rel.pairs, sel, strict=True) if s]
    y, g = rel.y[sel], rel.groups[sel]
    t0 = time.perf_counter()
    margins, usage = judge_margins(spec, pairs)
    secs = time.perf_counter() - t0
    same = (margins > 0).all(axis=1)
    full, route = route, route[sel]
    both = (route == 1) | ((route == 0) & same)
    print(f"\n== judge {spec} on {len(pairs)} labelled release rewordings ({len(np.unique(g))} questions"
          f"{f', seeded sample {seed}' if questions else ''}), {secs:.0f} s, usage {usage}")  # fmt: skip
    print(f"judge AUC (min margin as score of 'same'): {auc(-margins.min(axis=1), y):.3f}; "
          f"says same both ways on {same.mean():.2f} of pairs (changed: {y.mean():.2f})")  # fmt: skip
    print(f"unsure bands (per outer fold, chosen on its training part): "
          f"{', '.join(f'[{a:.3f},{b:.3f})' for a, b in bands)}; "
          f"{(route == 0).mean():.2f} of pairs judged")  # fmt: skip
    print(f"{'filter':<30} {'kept':>9} {'changed among kept':>22} {'faithful kept':>21} "
          f"{'judge requests':>14} {'per kept':>8}")  # fmt: skip
    res = {"spec": spec, "pairs": len(pairs), "seconds": round(secs, 1), "usage": usage}
    res["auc"] = round(auc(-margins.min(axis=1), y), 4)
    res["bands"] = bands
    res["verifier"] = _row("verifier alone", keep_v[sel], y, g, 0)
    res["judge"] = _row(f"judge alone ({spec})", same, y, g, 2 * len(pairs))
    res["verifier+judge"] = _row("verifier + judge where unsure", both, y, g, 2 * int((route == 0).sum()))
    # the band's bound: a judge that always agrees with the labels, asked on the same unsure pairs
    oracle = (route == 1) | ((route == 0) & (y == 0))
    unsure = 2 * int((route == 0).sum())
    res["verifier+perfect judge"] = _row("  bound: perfect judge there", oracle, y, g, unsure)
    if questions:  # the bound needs no judge: also on every labelled pair
        everywhere = (full == 1) | ((full == 0) & (rel.y == 0))
        res["bound, all labels"] = _row(
            f"  bound on all {len(rel.y)} pairs", everywhere, rel.y, rel.groups, 2 * int((full == 0).sum())
        )
    return res
