"""The augmentation manifest (augment/manifest.json): counts per step, request and token usage, the
judge's summary, and the metrics of the records (similarity per step, diversity gain, distinct-2)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from culturellm.augment.config import AugmentConfig
from culturellm.augment.metrics import describe, distinct_n, diversity_gain
from culturellm.augment.pipeline import STEPS, Augmenter
from culturellm.llm.base import ChatModel, Embedder
from culturellm.meaning import estimate


def judge_summary(
    cfg: AugmentConfig, state: dict[str, Any], accepted: int, band: tuple[float, float]
) -> dict[str, Any] | None:
    """The judge's requests (2 per judged candidate), rejections and requests per kept sample; with the
    verifier, its unsure band and how many candidates fell in it or were kept without the judge."""
    if not cfg.judge:
        return None
    steps = state["steps"].values()
    requests = sum(int(s.get("judge_requests", 0)) for s in steps)
    out: dict[str, Any] = {
        "model": cfg.judge,
        "requests": requests,
        "judged": requests // 2,
        "rejected": sum(int(s["reasons"].get("judge_rejected", 0)) for s in steps),
        "requests_per_kept": round(requests / accepted, 4) if accepted else None,
        "usage": state.get("judge_usage", {}),
    }
    if cfg.meaning_filter == "verifier":
        out["band"] = list(band)
        out["unsure"] = sum(int(s.get("judge_unsure", 0)) for s in steps)
        out["sure_kept"] = sum(int(s.get("judge_sure_kept", 0)) for s in steps)
        out["sure_rejected"] = sum(int(s["reasons"].get("verifier_rejected", 0)) for s in steps)
    return out


def gate_summary(cfg: AugmentConfig, aug: Augmenter) -> dict[str, Any]:
    """Which meaning filter screened the candidates; for the gate, the kind of data whose threshold it
    used (picked by the augmenter's spec) and that threshold."""
    if aug.verifier is None:
        return {"filter": cfg.meaning_filter, "checks": list(cfg.checks)}
    v = aug.verifier
    return {
        "filter": cfg.meaning_filter,
        "kind": v.kind,
        "threshold": round(v.threshold, 6),
        "threshold_from": "verifier_threshold" if cfg.verifier_threshold is not None else "augmenter",
    }


def augment_manifest(
    rows: list[dict[str, Any]],
    cfg: AugmentConfig,
    llm: ChatModel,
    embedder: Embedder,
    state: dict[str, Any],
    aug: Augmenter,
    resumed: int,
) -> dict[str, Any]:
    counts = Counter(r["step"] for r in rows)
    seeds = [r for r in rows if r["step"] == "seed"]
    new = [r for r in rows if r["step"] in ("paraphrase", "synonym")]
    seed_emb = aug._encode([r["text"] for r in seeds])
    new_emb = aug._encode([r["text"] for r in new])
    steps = state["steps"]
    llm_requests = sum(int(s["requests"]) for s in steps.values())
    accepted = len(rows) - len(seeds)
    return {
        "kind": "culturellm.augment",
        "llm": llm.name,
        "embedder": embedder.name,
        "config": cfg.model_dump(mode="json"),
        "counts": {
            "seeds": counts["seed"],
            "paraphrase": counts["paraphrase"],
            "synonym": counts["synonym"],
            "translation": counts["translation"],
            "accepted": accepted,
            "total": len(rows),
            "seeds_resumed": resumed,
            "seeds_short_of_n": sum(
                1
                for s in seeds
                if sum(1 for r in rows if r["parent"] == s["id"] and r["step"] == "paraphrase") < cfg.n
            ),
        },
        "steps": steps,
        "llm_requests": llm_requests,
        "llm_requests_per_accepted": round(llm_requests / accepted, 4) if accepted else None,
        "usage": state["usage"],
        "tokens": state["usage"]["prompt_tokens"] + state["usage"]["completion_tokens"],
        "cost_usd": state["usage"]["cost_usd"],
        "cache_hits": state["usage"]["cache_hits"],
        "elapsed_s": state["elapsed_s"],
        "parse_formats": dict(sorted(aug.parse_formats.items())),
        "judge": judge_summary(cfg, state, accepted, aug.band),
        "meaning_gate": gate_summary(cfg, aug),
        "meaning_estimate": estimate.of_records(rows),
        "metrics": {
            "similarity": {
                step: describe([r["similarity"] for r in rows if r["step"] == step]) for step in STEPS[1:]
            },
            "diversity_gain": diversity_gain(new_emb, seed_emb) if len(new) else 0.0,
            "distinct_2_seeds": distinct_n([r["text"] for r in seeds]),
            "distinct_2_all": distinct_n([r["text"] for r in rows if r["step"] != "translation"]),
        },
    }
