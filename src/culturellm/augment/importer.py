"""Import augmented questions published in the CultureLLM release's format into our augmented.jsonl.

The release's augmented sets are JSONL, one new wording per line:

    {"q_id": "27", "q_content": "<the new wording>", "ori_content": "<the seed wording>", "option": "..."}

with `q_id` the WVS question number without the "Q". The pooled form of the release's rewordings
(`{"source": "new_WVQ_1000.jsonl", "q_id": "27", "seed": ..., "candidate": ...}`: `candidate` for
`q_content`, `seed` for `ori_content`) is read too; `source` keeps only the lines of one release file
(`new_WVQ_1000` or `new_WVQ_1000.jsonl`; the others are counted, not rejected). Each line becomes one
record of our format
(`culturellm augment`'s `augmented.jsonl`: id, question_id, step, text, parent, similarity), step
"imported", grouped under the seed record of its question, so `culturellm dataset` and the ablation
read it like our own augmentation. The similarity is recomputed with the embedder: cosine(new
wording, our seed wording). A line is rejected, with its reason counted in OUT/manifest.json, when it
is not a JSON object, lacks `q_id` or `q_content`, names a question that is not one of our seeds, has
an `ori_content` that is not that seed (cosine to our seed wording below `seed_match`), is below the
similarity threshold `t1`, or repeats a text already kept, and then by the named import filter
(`IMPORT_FILTERS`): `checks` runs the lexical meaning checks of the filter chain
(`meaning.checks.MeaningChecks`), `verifier` (the default) the meaning gate (`meaning.verifier`; each
kept record carries its `p_changed`), `scored` the gate rejecting nothing (every rewording kept with
its `p_changed`, for `[dataset] weight = "verifier"`), `none` nothing more. A meaning verifier plugs
in by name:
`register_import_filter(name, factory)`, or an entry point in the group `culturellm.import_filters`
(a function taking `register`, as model kinds do); `factory(embedder, options)` returns a function
from (seed, candidate) pairs to one rejection reason or None per pair; a filter that scores pairs
may expose `p_changed` (its last call's P(meaning changed) per pair), written on the kept records.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from culturellm.augment.config import AugmentConfig
from culturellm.augment.pipeline import record_id
from culturellm.augment.state import RECORDS
from culturellm.errors import DataError, UnknownNameError
from culturellm.hashing import sha256_file
from culturellm.jsonio import read_text, write_json, write_jsonl
from culturellm.llm.access import ModelAccess
from culturellm.meaning import estimate
from culturellm.numbers import check_number
from culturellm.safewrite import check_distinct
from culturellm.wvs.questions import question_number

IMPORTED = "imported"
SEED_MATCH = 0.80  # the release's seed wording vs ours: same question, maybe other punctuation

PairFilter = Callable[[Sequence[tuple[str, str]]], list[str | None]]  # (seed, candidate) -> reason
FilterFactory = Callable[[Any, Mapping[str, Any]], PairFilter]  # (embedder, options) -> filter


def _no_filter(embedder: Any, options: Mapping[str, Any]) -> PairFilter:
    return lambda pairs: [None] * len(pairs)


def _meaning_checks(embedder: Any, options: Mapping[str, Any]) -> PairFilter:
    """The lexical meaning checks of the filter chain (options: checks, t_standin), as it runs them on
    a paraphrase: no swaps known, stand-ins for missing key words decided with the embedder."""
    from culturellm.meaning.checks import MeaningChecks

    mc = MeaningChecks(options["checks"], embed=embedder.encode, t_standin=options["t_standin"])

    def run(pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        found = mc.check_many([(seed, cand, (), None) for seed, cand in pairs])
        return [f"meaning check {r[0]}" if r else None for r in found]

    return run


def _verifier(embedder: Any, options: Mapping[str, Any], *, reject: bool = True) -> PairFilter:
    """The meaning gate (`meaning.verifier`, docs/augmentation.md) with the bundled model's fluency
    features (options: verifier_threshold; None: the default threshold), after the lexical checks.
    With `reject` False (the `scored` filter) nothing is rejected and every pair gets its score."""
    from culturellm.meaning.features import load_lm
    from culturellm.meaning.verifier import Verifier

    lm = load_lm(device=options.get("device"), dtype=options.get("dtype"))  # the run's placement
    verifier = Verifier(embedder, lm, threshold=options.get("verifier_threshold"))
    return _GateFilter(verifier, _meaning_checks(embedder, options) if reject else None)


class _GateFilter:
    """The meaning gate as an import filter: the lexical checks first, then the gate on what they keep;
    `p_changed` holds the last call's probabilities (None where a check rejected; written on the kept
    records, for the estimate of culturellm.meaning.estimate and `[dataset] weight`). Without `checks`
    (the `scored` filter) every pair is scored and kept."""

    def __init__(self, verifier: Any, checks: PairFilter | None) -> None:
        self.verifier, self.checks = verifier, checks
        self.p_changed: list[float | None] = []

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        reasons: list[str | None] = self.checks(pairs) if self.checks is not None else [None] * len(pairs)
        todo = [i for i, r in enumerate(reasons) if r is None]
        self.p_changed = [None] * len(pairs)
        for i, v in zip(todo, self.verifier.verdicts([pairs[i] for i in todo], top=1), strict=True):
            self.p_changed[i] = v.probability
            if self.checks is not None:
                reasons[i] = None if v.keep else f"verifier: {v.reasons[0]}"
        return reasons


def _scored(embedder: Any, options: Mapping[str, Any]) -> PairFilter:
    return _verifier(embedder, options, reject=False)


IMPORT_FILTERS: dict[str, FilterFactory] = {
    "checks": _meaning_checks,
    "verifier": _verifier,
    "scored": _scored,
    "none": _no_filter,
}
_PLUGINS_LOADED = False


def register_import_filter(name: str, factory: FilterFactory) -> None:
    """Make `factory` the import filter called `name` (`[augment] import_filter = "name"`)."""
    IMPORT_FILTERS[name] = factory


def check_import_filter(name: str) -> FilterFactory:
    """The factory of the import filter called `name` (built-in or from a `culturellm.import_filters`
    entry point); an unknown name is an UnknownNameError listing the known ones."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        from importlib.metadata import entry_points

        for ep in entry_points(group="culturellm.import_filters"):
            ep.load()(register_import_filter)
        _PLUGINS_LOADED = True
    if name not in IMPORT_FILTERS:
        raise UnknownNameError(f"unknown import filter {name!r}; known: {', '.join(sorted(IMPORT_FILTERS))}")
    return IMPORT_FILTERS[name]


def make_import_filter(name: str, embedder: Any, options: Mapping[str, Any]) -> PairFilter:
    """The import filter called `name`, made for this embedder and options
    (`AugmentConfig.import_filter_options()` and the placement, device and dtype)."""
    return check_import_filter(name)(embedder, dict(options))


def _same_source(value: Any, source: str) -> bool:
    name = str(value or "")
    return name == source or name.removesuffix(".jsonl") == source.removesuffix(".jsonl")


def _read_lines(path: Path) -> list[tuple[int, Any]]:
    out = []
    for n, line in enumerate(read_text(path).split("\n"), 1):  # read_text names the file on bad bytes
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except (ValueError, RecursionError):  # nested too deeply, a 5,000-digit number: not a record
            out.append((n, None))
    if not out:
        raise DataError(f"{path}: no records (empty file)")
    return out


def _claim_out(out_dir: Path, force: bool) -> None:
    """Claim OUT (culturellm.outdir): new, an earlier import's, or --force; never a directory of the
    user's files or another command's output (e.g. a paid augmentation run). An import made before
    claim markers (its manifest says so) is adopted."""
    from culturellm.outdir import claim, owner

    try:
        kind = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError, RecursionError):
        kind = None
    legacy = owner(out_dir) is None and kind == "culturellm.augment.import"
    claim(out_dir, "augment-import", force=force or legacy)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str | bool) or value is None else json.dumps(value)[:40]
    return text if len(text) <= 40 else text[:37] + "..."


def _candidates(lines: list[tuple[int, Any]], seeds: dict[str, Any], reject) -> list[dict[str, Any]]:
    """Lines with the fields we need and a known question (others rejected with a reason)."""
    cands = []
    for n, obj in lines:
        if not isinstance(obj, dict):
            reject(n, "not a JSON object")
            continue
        qid = question_number(obj.get("q_id"))
        text = obj.get("q_content", obj.get("candidate"))
        if qid is None:
            reject(n, f"q_id {_short(obj.get('q_id'))} is not a WVS question number")
        elif not isinstance(text, str) or not text.strip():
            reject(n, "q_content (or candidate) missing or empty")
        elif qid not in seeds:
            reject(n, f"no seed question {qid}")
        else:
            ori = obj.get("ori_content", obj.get("seed"))
            cands.append(
                {"line": n, "qid": qid, "text": text.strip(), "ori": ori, "option": obj.get("option")}
            )
    return cands


def import_release(
    path: Path | str,
    out_dir: Path | str,
    embedder: Any,
    config: AugmentConfig | None = None,
    *,
    force: bool = False,
    access: ModelAccess | None = None,
    seed_match: float = SEED_MATCH,
) -> dict[str, Any]:
    """Read a release-format JSONL; write OUT/augmented.jsonl and OUT/manifest.json; return the manifest.
    Every option is the config's (None: AugmentConfig()): t1, import_source, the seed selection (other
    seeds' lines: "question not selected"), import_filter and its options; `access`: the filter's device."""
    from culturellm.wvs import load_questions

    path, out_dir, config = Path(path), Path(out_dir), config or AugmentConfig()
    t1, import_source, import_filter = config.t1, config.import_source, config.import_filter
    check_number(seed_match, "seed_match", lo=-1.0, hi=1.0)
    check_distinct(out_dir / RECORDS, [path], "FILE")
    pair_filter = _pair_filter(config, embedder, access)  # an unknown name: before any work
    known = load_questions()
    questions = [q.id for q in config.select(known)]  # an unknown id: an error before any work
    lines, other_sources = _source_lines(path, import_source)
    _claim_out(out_dir, force)
    seeds = {q.id: q for q in known}
    rejected: list[dict[str, Any]] = []

    def reject(n: int, reason: str) -> None:
        rejected.append({"line": n, "reason": reason})

    cands = _selected(_candidates(lines, seeds, reject), questions, reject)
    kept = _structural(cands, seeds, embedder, t1, seed_match, reject)
    groups = _filtered(kept, seeds, pair_filter, reject)
    rows = _records(groups, seeds, path.name)
    write_jsonl(out_dir / RECORDS, rows)
    counts = _counts(len(lines), other_sources if import_source is not None else None, groups, rejected)
    manifest = {
        "kind": "culturellm.augment.import",
        "source": str(path),
        "source_sha256": sha256_file(path),
        "release_file": import_source,
        "filter": import_filter,
        "embedder": getattr(embedder, "name", str(embedder)),
        "t1": t1,
        "seed_match": seed_match,
        "counts": counts,
        "meaning_estimate": estimate.of_records(rows),
        **_rejections(rejected),
    }
    write_json(out_dir / "manifest.json", manifest)
    if not rows:
        top = ", ".join(f"{r} {n}" for r, n in Counter(manifest["rejection_reasons"]).most_common(3))
        raise DataError(f"{path}: no record fits a seed question ({top}); see {out_dir / 'manifest.json'}")
    return manifest


def _counts(lines: int, other_sources: int | None, groups: dict, rejected: list) -> dict[str, int]:
    """The manifest's counts (other_sources only when a release file was selected)."""
    out = {"lines": lines, **({"other_sources": other_sources} if other_sources is not None else {})}
    return out | {
        "seeds": len(groups),
        "accepted": sum(len(g) for g in groups.values()),
        "rejected": len(rejected),
    }


def _pair_filter(config: AugmentConfig, embedder: Any, access: ModelAccess | None) -> PairFilter:
    """The config's import filter, made with its options and the placement (device, dtype)."""
    placement = {"device": access.device, "dtype": access.dtype} if access is not None else {}
    return make_import_filter(config.import_filter, embedder, config.import_filter_options() | placement)


def _source_lines(path: Path, source: str | None) -> tuple[list[tuple[int, Any]], int]:
    """The file's (line number, parsed JSON) pairs, only those of release file `source` when given,
    and how many lines other sources had."""
    lines = _read_lines(path)
    if source is None:
        return lines, 0
    kept = [(n, o) for n, o in lines if isinstance(o, dict) and _same_source(o.get("source"), source)]
    if not kept:
        raise DataError(f"{path}: no line has source {source!r}")
    return kept, len(lines) - len(kept)


def _selected(cands: list[dict[str, Any]], questions: Sequence[str] | None, reject) -> list[dict[str, Any]]:
    """The candidates of the selected questions (all when `questions` is None); others rejected."""
    if questions is None:
        return cands
    wanted = set(questions)
    for c in cands:
        if c["qid"] not in wanted:
            reject(c["line"], "question not selected")
    return [c for c in cands if c["qid"] in wanted]


def _filtered(
    cands: list[dict[str, Any]], seeds: dict[str, Any], pair_filter: PairFilter, reject
) -> dict[str, list[dict[str, Any]]]:
    """The candidates the import filter keeps, grouped by question id; the others rejected with its
    reason."""
    reasons_of = pair_filter([(seeds[c["qid"]].text, c["text"]) for c in cands])
    probs = getattr(pair_filter, "p_changed", None) or [None] * len(cands)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c, why, p in zip(cands, reasons_of, probs, strict=True):
        if why:
            reject(c["line"], why)
        else:
            groups[c["qid"]].append(c if p is None else {**c, "p_changed": round(float(p), 4)})
    return groups


def _rejections(rejected: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's rejection fields: counts by reason (the reason up to its first ":" or " (")
    and the rejected lines in file order."""
    reasons = Counter(r["reason"].split(":")[0].split(" (")[0] for r in rejected)
    return {"rejection_reasons": dict(reasons), "rejected": sorted(rejected, key=lambda r: r["line"])}


def _structural(
    cands: list[dict[str, Any]], seeds: dict[str, Any], embedder: Any, t1: float, seed_match: float, reject
) -> list[dict[str, Any]]:
    """The candidates that name their seed (ori_content close to it), reach t1 and are new texts, each
    with its similarity `sim` and seed match `match`; the others rejected with a reason."""
    texts = [c["text"] for c in cands] + [seeds[c["qid"]].text for c in cands]
    oris = [c["ori"] if isinstance(c["ori"], str) and c["ori"].strip() else None for c in cands]
    vecs = embedder.encode(texts + [o for o in oris if o is not None]) if cands else []
    k = len(cands)
    ori_vecs = iter(vecs[2 * k :])
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, c in enumerate(cands):
        sim = float(vecs[i] @ vecs[k + i])
        match = float(next(ori_vecs) @ vecs[k + i]) if oris[i] is not None else None
        if match is not None and match < seed_match:
            reject(c["line"], f"ori_content is not seed {c['qid']} (cosine {match:.2f} < {seed_match})")
        elif sim < t1:
            reject(c["line"], f"below t1: cosine {sim:.2f} to seed {c['qid']} < {t1}")
        elif c["text"].casefold() in seen or c["text"].casefold() == seeds[c["qid"]].text.casefold():
            reject(c["line"], "duplicate text")
        else:
            seen.add(c["text"].casefold())
            out.append({**c, "sim": sim, "match": match})
    return out


def _records(groups: dict[str, list[dict[str, Any]]], seeds: dict[str, Any], source: str) -> list[dict]:
    rows: list[dict[str, Any]] = []
    for qid in sorted(groups, key=lambda q: int(q[1:])):
        seed = seeds[qid]
        sid = record_id(qid, "seed", seed.text)
        g = groups[qid]
        rows.append(
            {"id": sid, "question_id": qid, "step": "seed", "text": seed.text, "parent": None,
             "similarity": 1.0, "group_size": 1 + len(g)}
        )  # fmt: skip
        for c in g:
            rows.append(
                {"id": record_id(qid, IMPORTED, c["text"]), "question_id": qid, "step": IMPORTED,
                 "text": c["text"], "parent": sid, "similarity": round(c["sim"], 6),
                 "seed_match": None if c["match"] is None else round(c["match"], 6),
                 "source": f"{source}:{c['line']}", "release_option": c["option"],
                 **({"p_changed": c["p_changed"]} if "p_changed" in c else {})}
            )  # fmt: skip
    return rows
