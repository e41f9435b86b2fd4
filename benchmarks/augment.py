"""Augmentation benchmarks: threshold calibration, the filter chain's precision and recall on the
labelled pairs (before and after the meaning checks), LLM requests per accepted sample (ours vs the
reference's call pattern, same seeds and LLM), and similarity-filter throughput (batched vs pairs).

    python benchmarks/augment.py                  # all of them, bundled SmolLM2 + MiniLM, 3 seeds
    python benchmarks/augment.py --only calibrate
    python benchmarks/augment.py --only chain [--demo runs/arabic/augment]
    python benchmarks/augment.py --only requests --seeds 5 --llm bundled
    python benchmarks/augment.py --only throughput
    python benchmarks/augment.py --only verifier     # features cached by scripts/fit_verifier.py
    python benchmarks/augment.py --only gate         # every gate, per kind of data (augment_gate.py)
    python benchmarks/augment.py --only judge [--judge SPEC] [--judge-questions N]   (augment_judge.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PAIRS = Path(__file__).with_name("data") / "meaning_pairs.jsonl"


def load_pairs(path: Path = PAIRS, origin: str | None = "calibration") -> list[dict]:
    """Labelled pairs (seed, candidate, label equivalent|changed|broken, class, origin, [swaps,
    source]). origin="calibration": the 80 hand-written pairs the thresholds were chosen on, as
    {a, b, label 1|0, kind}; None: every pair as stored."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if origin is None:
        return rows
    return [
        {"a": r["seed"], "b": r["candidate"], "label": int(r["label"] == "equivalent"), "kind": r["class"]}
        for r in rows
        if r["origin"] == origin
    ]


def pair_cosines(embedder, pairs: list[dict]) -> np.ndarray:
    a = embedder.encode([p["a"] for p in pairs])
    b = embedder.encode([p["b"] for p in pairs])
    return np.sum(a * b, axis=1)


def accept(cos: float, a: str, b: str, t1: float, upper: float, negation: bool) -> bool:
    from culturellm.meaning.words import negation_count

    if not t1 <= cos < upper:
        return False
    return not (negation and negation_count(a) != negation_count(b))


def calibrate(embedder) -> dict:
    """Cosine distributions of paraphrase / non-paraphrase pairs and the threshold that separates
    them best (Youden's J = TPR - FPR), for the paraphrase filter as augment() applies it."""
    from culturellm.augment.config import AugmentConfig

    pairs = load_pairs()
    cos = pair_cosines(embedder, pairs)
    print(f"\n== calibration: {len(pairs)} pairs of WVS-style statements ({PAIRS.name}), {embedder.name}")
    kinds = sorted({p["kind"] for p in pairs})
    print(f"{'kind':<11} {'label':>5} {'n':>3} {'min':>6} {'mean':>6} {'max':>6}")
    for k in kinds:
        v = np.array([c for c, p in zip(cos, pairs, strict=True) if p["kind"] == k])
        lab = next(p["label"] for p in pairs if p["kind"] == k)
        print(f"{k:<11} {lab:>5} {len(v):>3} {v.min():6.3f} {v.mean():6.3f} {v.max():6.3f}")
    upper = AugmentConfig().dup_threshold
    pos = [i for i, p in enumerate(pairs) if p["label"] == 1]
    neg = [i for i, p in enumerate(pairs) if p["label"] == 0]
    rows = []
    print(f"\nfilter: T1 <= cos < {upper} (near-duplicate bound), with / without the negation check")
    print(f"{'T1':>5} {'TPR':>6} {'FPR':>6} {'J':>6} | {'TPR':>6} {'FPR':>6} {'J':>6}  (no negation check)")
    for t1 in np.round(np.arange(0.50, 0.96, 0.05), 2):
        out = []
        for negation in (True, False):
            acc = [
                accept(float(cos[i]), pairs[i]["a"], pairs[i]["b"], t1, upper, negation)
                for i in range(len(pairs))
            ]
            tpr = sum(acc[i] for i in pos) / len(pos)
            fpr = sum(acc[i] for i in neg) / len(neg)
            out.append((tpr, fpr, tpr - fpr))
        rows.append(
            {"t1": float(t1), "tpr": out[0][0], "fpr": out[0][1], "j": out[0][2], "j_no_neg": out[1][2]}
        )
        (a1, b1, c1), (a2, b2, c2) = out
        print(f"{t1:5.2f} {a1:6.2f} {b1:6.2f} {c1:6.2f} | {a2:6.2f} {b2:6.2f} {c2:6.2f}")
    # A false accept puts a sentence of another meaning into training with the seed's answer; a
    # false reject only costs a re-ask. So false accepts are weighted twice: max TPR - 2 FPR.
    for r in rows:
        r["cost_weighted"] = r["tpr"] - 2 * r["fpr"]
    best_j = max(rows, key=lambda r: (round(r["j"], 6), r["t1"]))
    best = max(rows, key=lambda r: (round(r["cost_weighted"], 6), r["t1"]))
    print(f"max Youden J (TPR - FPR): T1 = {best_j['t1']:.2f}; max TPR - 2 FPR: T1 = {best['t1']:.2f}")
    topic = [float(c) for c, p in zip(cos, pairs, strict=True) if p["kind"] == "topic"]
    print(
        f"best T1 = {best['t1']:.2f} (TPR {best['tpr']:.2f}, FPR {best['fpr']:.2f}); "
        f"paraphrase cosines {cos[pos].min():.3f}..{cos[pos].max():.3f}, "
        f"topic changes {min(topic):.3f}..{max(topic):.3f}; default t1 = {AugmentConfig().t1}"
    )
    return {"best": best, "best_youden": best_j, "grid": rows}


def _old_chain(cos: float, p: dict, cfg) -> str | None:
    """The filter chain before the meaning checks: a swap variant (pair with swaps) needs cos >= t2,
    a paraphrase t1 <= cos < dup_threshold; both the seed's number of negation words."""
    from culturellm.meaning.words import negation_count

    if p.get("swaps"):
        if cos < cfg.t2:
            return "below_t2"
    elif cos < cfg.t1:
        return "below_t1"
    elif cos >= cfg.dup_threshold:
        return "near_duplicate"
    if cfg.check_negation and negation_count(p["seed"]) != negation_count(p["candidate"]):
        return "negation_mismatch"
    return None


def _pr(flags: list[bool], bad: list[bool]) -> dict:
    """Precision / recall of flags as detectors of bad (changed or broken) pairs."""
    tp = sum(f and b for f, b in zip(flags, bad, strict=True))
    fp = sum(f and not b for f, b in zip(flags, bad, strict=True))
    n_bad = sum(bad)
    return {
        "flagged": tp + fp,
        "true": tp,
        "false": fp,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / n_bad if n_bad else None,
    }


def _fmt(x: float | None) -> str:
    return "   -" if x is None else f"{x:.2f}"


def chain(embedder, t_standins: tuple[float, ...] = (0.25, 0.30, 0.33, 0.36, 0.40, 0.45, 0.50)) -> dict:
    """Precision and recall of each check and of the whole filter chain, before and after the meaning
    checks, on the labelled pairs (benchmarks/data/meaning_pairs.jsonl). A check 'detects' a pair it
    rejects; a detected pair labelled changed or broken is a true detection."""
    from culturellm.augment.config import AugmentConfig
    from culturellm.meaning.checks import CHECKS, MeaningChecks

    cfg = AugmentConfig()
    pairs = load_pairs(origin=None)
    bad = [p["label"] != "equivalent" for p in pairs]
    seeds = embedder.encode([p["seed"] for p in pairs])
    cos = np.sum(seeds * embedder.encode([p["candidate"] for p in pairs]), axis=1)
    old = [_old_chain(float(c), p, cfg) for c, p in zip(cos, pairs, strict=True)]
    items = [(p["seed"], p["candidate"], p.get("swaps", ()), p.get("source")) for p in pairs]
    print(f"\n== filter chain on {len(pairs)} labelled pairs ({PAIRS.name}: {sum(bad)} changed/broken, "
          f"{len(pairs) - sum(bad)} equivalent), {embedder.name}, t_standin {cfg.t_standin}")  # fmt: skip
    print(f"{'detector':<40} {'flagged':>7} {'true':>5} {'false':>5} {'precision':>9} {'recall':>7}")
    rows: dict[str, dict] = {}

    def show(label: str, flags: list[bool]) -> None:
        rows[label] = r = _pr(flags, bad)
        print(f"{label:<40} {r['flagged']:>7} {r['true']:>5} {r['false']:>5} "
              f"{_fmt(r['precision']):>9} {_fmt(r['recall']):>7}")  # fmt: skip

    for reason in sorted({r for r in old if r}):
        show(f"  {reason} (similarity/negation)", [r == reason for r in old])
    for check in CHECKS:
        found = MeaningChecks([check], embed=embedder.encode, t_standin=cfg.t_standin).check_many(items)
        show(f"  {check}", [bool(f) for f in found])
    after = MeaningChecks(cfg.checks, embed=embedder.encode, t_standin=cfg.t_standin).check_many(items)
    show("chain before (similarity+negation)", [r is not None for r in old])
    rejected_after = [r is not None or bool(f) for r, f in zip(old, after, strict=True)]
    show("chain after (+ meaning checks)", rejected_after)
    only_new = [r is None and bool(f) for r, f in zip(old, after, strict=True)]
    lost = [p for p, f, b in zip(pairs, only_new, bad, strict=True) if f and not b]
    print("equivalent pairs the meaning checks reject (accepted before):")
    for p, f in ((p, after[pairs.index(p)]) for p in lost):
        print(f"  {f[0]}: {p['seed']!r} -> {p['candidate']!r}")
    classes = sorted({p["class"] for p, b in zip(pairs, bad, strict=True) if b})
    print("recall per failure class (before -> after):")
    per_class = {}
    for c in classes:
        idx = [i for i, p in enumerate(pairs) if p["class"] == c and bad[i]]
        b4 = sum(old[i] is not None for i in idx)
        af = sum(old[i] is not None or bool(after[i]) for i in idx)
        per_class[c] = {"n": len(idx), "before": b4, "after": af}
        print(f"  {c:<18} n={len(idx):>2}  {b4:>2} -> {af:>2}")
    issue = [i for i, p in enumerate(pairs) if p["origin"] == "issue-16"]
    print(f"issue #16 examples rejected: before {sum(old[i] is not None for i in issue)}/6, "
          f"after {sum(old[i] is not None or bool(after[i]) for i in issue)}/6")  # fmt: skip
    sweep = []
    print("t_standin sweep (key_word_missing; whole chain after): TPR = equivalents kept, FPR = bad kept")
    for t in t_standins:
        f = MeaningChecks(cfg.checks, embed=embedder.encode, t_standin=t).check_many(items)
        keep = [r is None and not x for r, x in zip(old, f, strict=True)]
        tpr = sum(k and not b for k, b in zip(keep, bad, strict=True)) / (len(pairs) - sum(bad))
        fpr = sum(k and b for k, b in zip(keep, bad, strict=True)) / sum(bad)
        sweep.append({"t_standin": t, "tpr": tpr, "fpr": fpr, "tpr_minus_2fpr": tpr - 2 * fpr})
        print(f"  t_standin {t:.2f}: TPR {tpr:.3f}  FPR {fpr:.3f}  TPR - 2 FPR {tpr - 2 * fpr:.3f}")
    return {"rows": rows, "per_class": per_class, "sweep": sweep}


def demo_flags(embedder, run_dir: Path) -> dict:
    """On a finished augmentation (e.g. the README demo's runs/arabic/augment): the share of its
    accepted samples each meaning check flags."""
    from culturellm.augment.config import AugmentConfig
    from culturellm.jsonio import read_jsonl
    from culturellm.meaning.checks import CHECKS, MeaningChecks

    cfg = AugmentConfig()
    rows = read_jsonl(run_dir / "augmented.jsonl")
    by_id = {r["id"]: r for r in rows}
    seed = {r["question_id"]: r["text"] for r in rows if r["step"] == "seed"}
    acc = [r for r in rows if r["step"] in ("paraphrase", "synonym")]
    items = [
        (seed[r["question_id"]], r["text"], r.get("swaps") or (), by_id.get(r["parent"], {}).get("text"))
        for r in acc
    ]
    print(f"\n== meaning checks on the {len(acc)} accepted samples of {run_dir}")
    out = {}
    for check in CHECKS:
        f = MeaningChecks([check], embed=embedder.encode, t_standin=cfg.t_standin).check_many(items)
        n = sum(bool(x) for x in f)
        out[check] = n
        print(f"  {check:<18} flags {n:>3} / {len(acc)} ({n / max(len(acc), 1):.0%})")
    f = MeaningChecks(cfg.checks, embed=embedder.encode, t_standin=cfg.t_standin).check_many(items)
    out["any"] = sum(bool(x) for x in f)
    print(f"  {'any':<18} flags {out['any']:>3} / {len(acc)} ({out['any'] / max(len(acc), 1):.0%})")
    for r, x in zip(acc, f, strict=True):
        print(f"    {'REJECT ' + x[0] if x else 'keep':<28} {r['question_id']} {r['step']:<10} {r['text']}")
    return {"accepted": len(acc), "flagged": out}


def reference_pattern(seeds, llm, embedder, cfg) -> dict:
    """The public reference's call pattern on the same seeds and LLM: one paraphrase request per
    seed, then one synonym request per content word per kept paraphrase; same filters as ours."""
    from culturellm.augment.parse import parse_list, parse_synonyms
    from culturellm.augment.prompts import paraphrase_messages, synonym_messages
    from culturellm.llm.base import SamplingParams
    from culturellm.meaning.words import build_variants, content_words, option_words

    params = SamplingParams(max_tokens=cfg.paraphrase_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    requests = 0
    outs = llm.generate([paraphrase_messages(q.text, cfg.rewrites_per_request) for q in seeds], params)
    requests += len(seeds)
    seed_emb = embedder.encode([q.text for q in seeds])
    kept: list[tuple[int, str]] = []
    for i, out in enumerate(outs):
        items = parse_list(out).items
        if items:
            sims = embedder.encode(items) @ seed_emb[i]
            kept += [(i, t) for t, s in zip(items, sims, strict=True) if cfg.t1 <= s < cfg.dup_threshold][
                : cfg.n
            ]
    jobs = []
    for i, text in kept:
        for w in content_words(text, option_words(seeds[i].options.values())):  # every content word
            jobs.append((i, text, w))
    syn_params = SamplingParams(max_tokens=48, temperature=cfg.temperature, top_p=cfg.top_p)
    answers = llm.generate(
        [synonym_messages(text, [w], cfg.synonyms_per_word) for _, text, w in jobs], syn_params
    )
    requests += len(jobs)
    variants = []
    for (i, text, w), a in zip(jobs, answers, strict=True):
        syn = parse_synonyms(a, [w]).synonyms
        variants += [(i, v.text) for v in build_variants(text, syn, max_combined=1)]
    accepted_syn = 0
    if variants:
        sims = np.sum(embedder.encode([t for _, t in variants]) * seed_emb[[i for i, _ in variants]], axis=1)
        accepted_syn = int(np.sum(sims >= cfg.t2))
    accepted = len(kept) + min(accepted_syn, cfg.m * len(seeds))
    return {
        "requests": requests,
        "accepted": accepted,
        "paraphrases": len(kept),
        "synonym_requests": len(jobs),
    }


def requests_benchmark(
    llm_spec: str, n_seeds: int, n: int, m: int, scopes: tuple[str, ...] = ("sentence", "seed")
) -> dict:
    """Ours (each `--synonym-requests` scope) and the reference's call pattern, same seeds and LLM."""
    from culturellm.augment import AugmentConfig, augment
    from culturellm.embed import load_embedder
    from culturellm.llm import load_model
    from culturellm.wvs import load_questions

    seeds = load_questions()[:n_seeds]
    llm = load_model(llm_spec)
    emb = load_embedder()
    print(f"\n== LLM requests per accepted sample: {llm_spec}, {n_seeds} seeds, n={n}, m={m}")
    per = lambda d: d["requests"] / max(d["accepted"], 1)  # noqa: E731
    rows: dict[str, dict] = {}
    for scope in scopes:
        cfg = AugmentConfig(n=n, m=m, synonym_requests=scope)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            man = augment(seeds, llm, emb, cfg, Path(d))
            secs = time.perf_counter() - t0
        steps = man["steps"]
        rows[f"ours (synonyms per {scope})"] = {
            "requests": man["llm_requests"],
            "accepted": man["counts"]["accepted"],
            "paraphrase_requests": steps["paraphrase"]["requests"],
            "synonym_requests": steps["synonym"]["requests"],
            "paraphrases": man["counts"]["paraphrase"],
            "synonyms": man["counts"]["synonym"],
            "seconds": secs,
        }
    t0 = time.perf_counter()
    ref = reference_pattern(seeds, llm, emb, AugmentConfig(n=n, m=m))
    ref["seconds"] = time.perf_counter() - t0
    ref["paraphrase_requests"] = len(seeds)
    ref["synonyms"] = ref["accepted"] - ref["paraphrases"]
    rows["reference pattern"] = ref
    print(
        f"{'':<28} {'requests':>9} {'(para+syn)':>11} {'accepted':>9} {'(para+syn)':>11} "
        f"{'req/sample':>11} {'seconds':>8}"
    )
    for label, d in rows.items():
        split_r = f"{d['paraphrase_requests']}+{d['synonym_requests']}"
        split_a = f"{d['paraphrases']}+{d['synonyms']}"
        print(
            f"{label:<28} {d['requests']:>9} {split_r:>11} {d['accepted']:>9} {split_a:>11} "
            f"{per(d):>11.3f} {d['seconds']:>8.0f}"
        )
    ratios = {}
    for label, d in rows.items():
        if label != "reference pattern":
            ratios[label] = per(ref) / per(d) if per(d) else float("inf")
            print(f"{label}: {ratios[label]:.1f}x fewer requests per accepted sample (goal >= 20x)")
    print(
        "(timings include cache hits where a previous run asked the same; rerun with CULTURELLM_NO_CACHE=1)"
    )
    return {"rows": rows, "ratios": ratios}


def requests_from_run(run_dir: Path) -> dict:
    """Count-only comparison on a finished `culturellm augment` run: the reference's pattern on the
    same seeds and the same kept paraphrases needs 1 request per seed + 1 per content word per
    paraphrase (all content words, no limit). Assumes it would accept as many samples as ours (same
    filters), which favours the reference: it has no re-asks to make up for rejected paraphrases."""
    from culturellm.jsonio import read_jsonl
    from culturellm.meaning.words import content_words, option_words
    from culturellm.wvs import load_questions

    man = json.loads((run_dir / "manifest.json").read_text())
    rows = read_jsonl(run_dir / "augmented.jsonl")
    opts = {q.id: q.options for q in load_questions()}
    seeds = [r for r in rows if r["step"] == "seed"]
    paras = [r for r in rows if r["step"] == "paraphrase"]
    ref = len(seeds) + sum(
        len(content_words(r["text"], option_words(opts[r["question_id"]].values()))) for r in paras
    )
    accepted = man["counts"]["accepted"]
    ours = man["llm_requests"]
    print(f"\n== requests on {run_dir} ({len(seeds)} seeds, {man['llm']}): accepted {accepted}")
    print(f"ours: {ours} requests ({ours / max(accepted, 1):.3f} per accepted sample)")
    print(
        f"reference pattern, same seeds/paraphrases: {ref} requests ({ref / max(accepted, 1):.3f} per sample)"
    )
    print(f"ratio: {ref / max(ours, 1):.1f}x")
    per_seed = man["steps"]["paraphrase"]["requests"] + len(seeds)
    if man["config"].get("synonym_requests", "sentence") == "sentence":
        print(
            f"with --synonym-requests seed (estimate: same paraphrase requests + 1 per seed): "
            f"{per_seed} requests, {ref / max(per_seed, 1):.1f}x"
        )
    return {
        "ours": ours,
        "reference": ref,
        "accepted": accepted,
        "ratio": ref / max(ours, 1),
        "seed_scope": per_seed,
    }


def throughput(pairs_n: int = 400) -> dict:
    """Similarity filter: N (candidate, seed) pairs embedded one pair at a time (as the reference
    recomputed BERT embeddings per comparison) vs in one batched call. No embedding cache."""
    from sentence_transformers import SentenceTransformer

    from culturellm.embed import bundled_embedder_dir

    model = SentenceTransformer(str(bundled_embedder_dir()), device="cpu")
    pairs = load_pairs()
    texts = [(p["a"], f"{p['b']} ({i})") for i, p in enumerate(pairs * (pairs_n // len(pairs) + 1))][:pairs_n]
    kw = dict(normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    n_pairwise = min(pairs_n, 100)
    t0 = time.perf_counter()
    for a, b in texts[:n_pairwise]:
        ea = model.encode([a], **kw)
        eb = model.encode([b], **kw)
        float(ea[0] @ eb[0])
    pairwise = n_pairwise / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    seeds = sorted({a for a, _ in texts})
    es = model.encode(seeds, batch_size=64, **kw)
    ec = model.encode([b for _, b in texts], batch_size=64, **kw)
    idx = {s: i for i, s in enumerate(seeds)}
    np.sum(ec * es[[idx[a] for a, _ in texts]], axis=1)
    batched = pairs_n / (time.perf_counter() - t0)
    print(f"\n== similarity-filter throughput (all-MiniLM-L6-v2, CPU, {os.cpu_count()} cores)")
    print(f"one pair at a time: {pairwise:8.1f} pairs/s ({n_pairwise} pairs)")
    print(f"batched:            {batched:8.1f} pairs/s ({pairs_n} pairs; seeds embedded once)")
    print(f"speed-up: {batched / pairwise:.1f}x")
    return {"pairwise_per_s": pairwise, "batched_per_s": batched, "speedup": batched / pairwise}


def _old_chain_keep(z: dict, name: str, data) -> np.ndarray:
    """The old chain's verdicts (True: kept) from the cached features: similarity band and negation
    (`_old_chain`) and the five lexical checks at their defaults."""
    from types import SimpleNamespace

    from culturellm.augment.config import AugmentConfig

    cfg = AugmentConfig()
    cos = z[f"{name}_x"][:, list(z["names"]).index("cos")]
    extra = data.swaps or [((), None)] * len(data.pairs)
    rows = [
        {"seed": s, "candidate": c, "swaps": sw} for (s, c), (sw, _) in zip(data.pairs, extra, strict=True)
    ]
    old = [
        _old_chain(float(x), r, SimpleNamespace(**cfg.model_dump())) for x, r in zip(cos, rows, strict=True)
    ]
    return np.array([r is None for r in old]) & ~z[f"{name}_chk"].any(axis=1)


def _old_pair_keep(z: dict, rel, old) -> np.ndarray:
    """The verifier's verdicts on the 144 old pairs, each scored by the fold model whose training
    part does not hold its seed question (seed texts matched to the release's; else the full model)."""
    from culturellm.meaning.fit import choose_threshold, group_folds, model, oof_probabilities

    def norm(t: str) -> str:
        return "".join(ch for ch in t.lower() if ch.isalnum())

    qid = {norm(s): g for (s, _), g in zip(rel.pairs, rel.groups, strict=True)}
    old_q = np.array([qid.get(norm(s), "") for s, _ in old.pairs])
    x, y, xo = z["release_x"], rel.y, z["old_x"]
    keep = np.zeros(len(old.pairs), dtype=bool)
    done = np.zeros(len(old.pairs), dtype=bool)
    for tr, te in group_folds(rel.groups):
        t = choose_threshold(oof_probabilities(x[tr], y[tr], rel.groups[tr]), y[tr])
        m = model().fit(x[tr], y[tr])
        sel = np.isin(old_q, np.unique(rel.groups[te]))
        keep[sel] = m.predict_proba(xo[sel])[:, 1] < t
        done |= sel
    if (~done).any():
        t = choose_threshold(oof_probabilities(x, y, rel.groups), y)
        keep[~done] = model().fit(x, y).predict_proba(xo[~done])[:, 1] < t
    print(
        f"  (old pairs: {done.sum()} scored by a fold model without their question, "
        f"{(~done).sum()} by the full one)"
    )
    return keep


def verifier_benchmark(features: np.ndarray | None = None) -> dict:
    """Held-out (grouped by question, threshold nested) kept_changed and faithful_kept with bootstrap
    CIs for the verifier and the old chain, on the 550 release labels and the 144 old pairs; plus the
    lexical checks as extra verifier features (do they earn their place?)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import fit_verifier
    from culturellm.meaning.fit import auc, bootstrap, load_labelled, nested_keep, oof_probabilities

    z = fit_verifier.features()
    rel, old = load_labelled(fit_verifier.LABELS), load_labelled(fit_verifier.OLD_PAIRS)
    old_groups = np.array([s for s, _ in old.pairs])
    res: dict = {}
    keep_v, _ = nested_keep(z["release_x"], rel.y, rel.groups)
    rows = [
        ("verifier", "release (550)", bootstrap(keep_v, rel.y, rel.groups)),
        ("old chain", "release (550)", bootstrap(_old_chain_keep(z, "release", rel), rel.y, rel.groups)),
        ("verifier", "old pairs (144)", bootstrap(_old_pair_keep(z, rel, old), old.y, old_groups)),
        ("old chain", "old pairs (144)", bootstrap(_old_chain_keep(z, "old", old), old.y, old_groups)),
    ]
    print("\n== meaning filter, held out by question (GroupKFold 5 on q_id, threshold nested), 95 % CIs "
          "resampling questions")  # fmt: skip
    print(f"{'filter':<10} {'pairs':<16} {'kept':>9} {'changed among kept':>24} {'faithful kept':>22}")
    for who, where, r in rows:
        res[f"{who} / {where}"] = r
        kc, fk = r["kept_changed_ci"], r["faithful_kept_ci"]
        print(f"{who:<10} {where:<16} {r['kept']:>4}/{r['n']:<4} "
              f"{r['kept_changed']:>7.3f} [{kc[0]:.3f},{kc[1]:.3f}] "
              f"{r['faithful_kept']:>7.3f} [{fk[0]:.3f},{fk[1]:.3f}]")  # fmt: skip
    x = z["release_x"]
    names = list(z["names"])
    variants = {"all features": x, "+ lexical checks": np.hstack([x, z["release_chk"]])}
    for group in ("lm_", "new_sim", "align"):
        variants[f"without {group}*"] = x[:, [i for i, n in enumerate(names) if not n.startswith(group)]]
    for ch in range(z["release_chk"].shape[1]):
        variants[f"+ {z['chk_names'][ch]}"] = np.hstack([x, z["release_chk"][:, [ch]]])
    print(
        "ablation (grouped out-of-fold AUC; held-out kept_changed / faithful_kept at the nested threshold):"
    )
    for label, xx in variants.items():
        a = auc(oof_probabilities(xx, rel.y, rel.groups), rel.y)
        k, _ = nested_keep(xx, rel.y, rel.groups)
        kc = float(rel.y[k].mean()) if k.any() else 0.0
        fk = float(k[rel.y == 0].mean())
        res[f"ablation / {label}"] = {
            "auc": round(a, 4),
            "kept_changed": round(kc, 4),
            "faithful_kept": round(fk, 4),
        }
        print(f"  {label:<32} AUC {a:.3f}  kept_changed {kc:.3f}  faithful_kept {fk:.3f}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--only", choices=["calibrate", "chain", "requests", "throughput", "verifier", "judge", "gate"]
    )
    ap.add_argument("--demo", type=Path, help="with chain: also measure the checks on this augment dir")
    ap.add_argument("--llm", default="bundled")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument(
        "--synonym-requests", default="sentence,seed", help="our scopes to measure (comma-separated)"
    )
    ap.add_argument("--judge", default="bundled", help="with judge: the judge's model spec")
    ap.add_argument(
        "--judge-questions", type=int, help="with judge: only the pairs of N seeded-random questions"
    )
    ap.add_argument("--from-run", type=Path, help="count-only request comparison on a finished run dir")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    results = {}
    if args.only in (None, "calibrate"):
        from culturellm.embed import load_embedder

        results["calibrate"] = calibrate(load_embedder(disk_cache=False))
    if args.only in (None, "chain"):
        from culturellm.embed import load_embedder

        results["chain"] = chain(load_embedder(disk_cache=False))
        if args.demo:
            results["demo"] = demo_flags(load_embedder(disk_cache=False), args.demo)
    if args.only == "verifier":
        results["verifier"] = verifier_benchmark()
    if args.only == "gate":
        from augment_gate import gate_benchmark

        results["gate"] = gate_benchmark()
    if args.only == "judge":
        from augment_judge import judge_benchmark

        results["judge"] = judge_benchmark(args.judge, args.judge_questions)
    if args.only in (None, "throughput"):
        results["throughput"] = throughput()
    if args.from_run:
        results["requests_from_run"] = requests_from_run(args.from_run)
    elif args.only in (None, "requests"):
        results["requests"] = requests_benchmark(
            args.llm, args.seeds, args.n, args.m, tuple(args.synonym_requests.split(","))
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
