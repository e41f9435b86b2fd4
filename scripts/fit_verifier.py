"""Refit the meaning verifier and write its shipped parameters (src/culturellm/data/verifier.json).

    python scripts/fit_verifier.py [--device cpu] [--dtype float32] [--recompute] [--plot PNG]

Features of the labelled pairs are cached in benchmarks/results/verifier_features.npz (the language
model's columns, keyed by the pairs' text, and the last full matrices), so a refit costs seconds;
--recompute recomputes them (after changing culturellm.meaning.features). Folds are grouped by seed
question (culturellm.meaning.fit).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks" / "data" / "release_labels.jsonl"
OLD_PAIRS = ROOT / "benchmarks" / "data" / "meaning_pairs.jsonl"
CACHE = ROOT / "benchmarks" / "results" / "verifier_features.npz"
PARAMS = ROOT / "src" / "culturellm" / "data" / "verifier.json"


def _key(pairs) -> str:
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def features(device: str = "cpu", dtype: str = "float32", recompute: bool = False) -> dict[str, np.ndarray]:
    """{release_x, release_chk, old_x, old_chk, names, chk_names}. The language model's columns (the
    slow part) are cached in CACHE unless the pairs changed; the rest (MiniLM, lexicon) is recomputed."""
    from culturellm.embed import load_embedder
    from culturellm.meaning.features import FEATURES, FLUENCY, PairFeatures, load_lm
    from culturellm.meaning.fit import check_flags, load_labelled

    rel, old = load_labelled(LABELS), load_labelled(OLD_PAIRS)
    key = _key([rel.pairs, old.pairs])
    cached = dict(np.load(CACHE, allow_pickle=False)) if CACHE.is_file() and not recompute else {}
    emb = load_embedder(disk_cache=False)
    out = {"names": np.array(FEATURES)}
    have = [str(n) for n in cached.get("lm_names", [])]
    if str(cached.get("key")) != key or not set(FLUENCY) <= set(have):
        pf = PairFeatures(emb, load_lm(device=device, dtype=dtype))
        cached = {"key": np.array(key), "lm_names": np.array(FLUENCY)}
        cached |= {f"{n}_lm": pf.fluency_columns(d.pairs) for n, d in (("release", rel), ("old", old))}
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        np.savez(CACHE, **cached)
        have = list(FLUENCY)
    cols = [have.index(f) for f in FLUENCY]
    pf = PairFeatures(emb)
    for name, data in (("release", rel), ("old", old)):
        out[f"{name}_x"] = pf.compute(data.pairs, fluency=cached[f"{name}_lm"][:, cols])
        chk_names, out[f"{name}_chk"] = check_flags(data, emb.encode)
        out["chk_names"] = np.array(chk_names)
    # the whole matrices too: what the shipped parameters were fitted on (tests refit them)
    np.savez(
        CACHE, **{k: v for k, v in cached.items() if k in ("key", "lm_names") or k.endswith("_lm")}, **out
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--recompute", action="store_true")
    ap.add_argument("--C", type=float, default=0.5, dest="c")
    ap.add_argument("--out", type=Path, default=PARAMS)
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "verifier_curve.png")
    args = ap.parse_args(argv)
    from culturellm.meaning.fit import fit, load_labelled, oof_probabilities

    z = features(args.device, args.dtype, args.recompute)
    rel = load_labelled(LABELS)
    params = fit(z["release_x"], rel.y, rel.groups, [str(n) for n in z["names"]], c=args.c)
    params["labels"] = str(LABELS.relative_to(ROOT))
    params["lm"] = "bundled"
    params["embedder"] = "bundled"
    args.out.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(params["cv"], indent=1))
    if args.plot:
        oof = oof_probabilities(z["release_x"], rel.y, rel.groups, args.c)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from augment import _old_chain_keep  # the old chain's verdicts, for its point on the plot

        keep = _old_chain_keep(z, "release", rel)
        chain = (float(keep[rel.y == 0].mean()), float(rel.y[keep].mean()))
        plot(oof, rel.y, params["threshold"], args.plot, chain)
    return 0


def plot(p: np.ndarray, y: np.ndarray, threshold: float, path: Path, chain: tuple[float, float]) -> None:
    """kept_changed against faithful_kept over thresholds (grouped out-of-fold), the default marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from culturellm.meaning.fit import rates

    ts = np.unique(np.concatenate([np.linspace(0, 1, 201), p]))
    pts = np.array([rates(p, y, float(t))[:2] for t in ts])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(pts[:, 1], pts[:, 0], label="verifier (held out by question)")
    kc, fk, _ = rates(p, y, threshold)
    ax.plot([fk], [kc], "o", color="C3", label=f"default threshold {threshold:.2f}")
    for t in (0.2, 0.3, 0.4, 0.5, 0.6):
        a, b, _ = rates(p, y, t)
        ax.annotate(f"{t:.1f}", (b, a), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.plot([chain[0]], [chain[1]], "s", color="C1", label="old chain (checks)")
    ax.axhline(0.05, ls=":", color="grey", label="target: 5 % changed among kept")
    ax.axvline(0.80, ls="--", color="grey", label="target: 80 % of faithful kept")
    ax.axhline(float(y.mean()), ls="-.", color="C2", label=f"keep everything ({y.mean():.0%} changed)")
    ax.set_xlabel("faithful rewordings kept (recall)")
    ax.set_ylabel("changed among kept (1 - precision)")
    ax.set_title("Meaning verifier on 550 labelled GPT-4 rewordings")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
