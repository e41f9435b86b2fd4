"""End-to-end: `culturellm run` on a tiny configuration with the bundled models, and resumption after
SIGKILL at several points giving the same artefacts as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import pytest

from culturellm.config import RunConfig, load_config, save_config
from culturellm.errors import DataError
from culturellm.stages import STAGES

pytestmark = pytest.mark.slow  # subprocesses running the bundled models

# The smallest run that still exercises every stage and gives each stage a point where a kill lands
# half-way (a partial output exists and more work remains): two seeds augmented one at a time, two
# fine-tuning steps with a checkpoint after each, one task (three model rows), three alignment rows.
TINY = """
name = "tiny"
cultures = ["arabic"]
seed = 0

[augment]
n = 1
m = 1
limit_seeds = 2
batch_size = 1

[dataset]
holdout_questions = 1

[finetune]
max_steps = 2
batch_size = 4
save_steps = 1

[evaluate]
limit = 4
tasks = ["spam_detect"]

[align]
min_heldout = 1
"""


def _env(cache: Path | None = None) -> dict[str, str]:
    """The environment of a run; `cache`: its own response cache, so that a run computes every answer
    instead of reading what an earlier run cached (read from a cache, a stage can finish between two
    looks of the SIGKILL test's poll)."""
    env = os.environ.copy()
    if cache is not None:
        env["CULTURELLM_CACHE_DIR"] = str(cache)
    return env


def _run(args: list[str], cache: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "culturellm.cli", *args],
        capture_output=True,
        text=True,
        env=_env(cache),
        **kw,
    )


def _artefacts(run_dir: Path) -> dict[str, object]:
    """What must not depend on interruptions: data, model weights, metrics (timings excluded)."""
    from safetensors.numpy import load_file

    out: dict[str, object] = {}
    for rel in ("augment/augmented.jsonl", "data/arabic/train.jsonl", "seeds/arabic.jsonl"):
        out[rel] = (run_dir / rel).read_text()
    weights = load_file(run_dir / "models/arabic/adapter_model.safetensors")
    out["weights"] = {k: v.round(4).tolist() for k, v in sorted(weights.items())}
    rows = [json.loads(x) for x in (run_dir / "eval/arabic/results.jsonl").read_text().splitlines()]
    out["results"] = sorted((r["model"], r["task"], round(r["macro_f1"], 6), r["n"]) for r in rows)
    al = [json.loads(x) for x in (run_dir / "eval/arabic/align.jsonl").read_text().splitlines()]
    out["align"] = [(r["model"], round(r["majority_agreement"], 6), round(r["one_minus_jsd"], 6)) for r in al]
    return out


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    run_dir = runs / "full"
    res = _run(["run", str(tiny_config), "--out", str(run_dir)], cache=runs / "cache-full", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir


def test_config_roundtrip_and_errors(tmp_path, tiny_config):
    cfg = load_config(tiny_config)
    assert cfg.augment.limit_seeds == 2 and cfg.evaluate.limit == 4
    save_config(cfg, tmp_path / "c.toml")
    assert load_config(tmp_path / "c.toml") == cfg
    (tmp_path / "bad.toml").write_text("[augment]\nn = 'many'\n")
    with pytest.raises(DataError, match=r"bad.toml: field 'augment.n'"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text("[evaluate]\nlimt = 3\n")
    with pytest.raises(DataError, match=r"typo.toml: field 'evaluate.limt'"):
        load_config(tmp_path / "typo.toml")
    assert RunConfig().section_hash("augment") != RunConfig(augment={"n": 3}).section_hash("augment")


def test_run_end_to_end(uninterrupted):
    run_dir = uninterrupted
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [s for s, r in manifest["stages"].items() if r["status"] == "done"] == [
        "seeds",
        "augment",
        "dataset",
        "finetune",
        "evaluate",
        "align",
        "report",
        "push",
    ]
    assert manifest["versions"]["torch"] and manifest["inputs"]["questions"]
    for stage in STAGES:  # each stage wrote what its row in the table declares
        outs = manifest["stages"][stage.name]["outputs"]
        assert outs and all(any(fnmatch(rel, w) for w in stage.writes) for rel in outs), (stage.name, outs)
    assert (run_dir / "config.toml").exists() and (run_dir / "report.md").exists()
    written = load_config(run_dir / "config.toml")  # every field, reloadable as it was run
    assert written.finetune.max_steps == 2 and written.align.min_heldout == 1
    text = (run_dir / "config.toml").read_text()
    for field in ("grad_accum", "max_length", "t1", "calibration", "min_heldout", "# max_tokens = (unset)"):
        assert field in text, field
    assert list(run_dir.glob("plots/*.png"))
    models = {
        json.loads(x)["model"] for x in (run_dir / "eval/arabic/results.jsonl").read_text().splitlines()
    }
    assert models == {"base", "base+culture-prompt", "culturellm"}
    report = (run_dir / "report.md").read_text()
    assert "culturellm" in report


def test_rerun_skips_every_stage(uninterrupted, tiny_config):
    before = (uninterrupted / "manifest.json").read_text()
    res = _run(
        ["run", str(tiny_config), "--out", str(uninterrupted)],
        cache=uninterrupted.parent / "cache-full",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("up to date, skipped") == len(STAGES)  # every stage
    after = json.loads((uninterrupted / "manifest.json").read_text())
    assert after["stages"] == json.loads(before)["stages"]


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.is_file() else 0


# Per stage: its partial output, seen while the stage runs and before it finishes.
PARTIAL = {
    "augment": lambda d: _lines(d / "augment/augmented.jsonl") > 0,  # the first seed's records
    "finetune": lambda d: any(d.glob("models/arabic/checkpoints/checkpoint-*/trainer_state.json")),
    "evaluate": lambda d: _lines(d / "eval/arabic/results.jsonl") > 0,  # the first model's row
    "align": lambda d: _lines(d / "eval/arabic/align.jsonl") > 0,
}


def _stage_status(run_dir: Path, stage: str) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())["stages"].get(stage, {}).get("status")
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def _mid_stage(run_dir: Path, stage: str) -> bool:
    return _stage_status(run_dir, stage) == "running" and PARTIAL[stage](run_dir)


def _kill_mid_stage(cmd: list[str], run_dir: Path, stage: str, cache: Path, timeout: float = 900) -> None:
    """Start the run; once `stage` is running with a partial output, freeze the process (SIGSTOP),
    check that the stage is still running with its partial output on disk, then SIGKILL it. Frozen,
    the run cannot move on between the check and the kill: the kill lands half-way through `stage`."""
    log = cache.with_name(f"{cache.name}-{stage}.log")
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=_env(cache))
    try:
        t0 = time.monotonic()
        while not _mid_stage(run_dir, stage):
            assert proc.poll() is None, (
                f"the run ended (rc {proc.returncode}) before {stage} was half-done:\n"
                + log.read_text(errors="replace")[-3000:]
            )
            assert time.monotonic() - t0 < timeout, f"{stage} never ran with a partial output"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGSTOP)
        status = _stage_status(run_dir, stage)
        assert status == "running" and PARTIAL[stage](run_dir), (
            f"{stage} was {status} when the run was stopped: the kill would not land mid-stage"
        )
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _stage_status(run_dir, stage) == "running" and PARTIAL[stage](run_dir)


def test_sigkill_resume_matches_uninterrupted(uninterrupted, tiny_config, tmp_path):
    """Killed half-way through augment, finetune, evaluate and align in turn (each restart resumes
    the stage killed before), then run to the end: the same artefacts as the uninterrupted run. The
    killed run has its own response cache: every answer is computed, none read from the uninterrupted
    run's, so each stage runs long enough to be caught half-way."""
    run_dir, cache = tmp_path / "killed", tmp_path / "cache-killed"
    cmd = [sys.executable, "-m", "culturellm.cli", "run", str(tiny_config), "--out", str(run_dir)]
    for stage in ("augment", "finetune", "evaluate", "align"):
        _kill_mid_stage(cmd, run_dir, stage, cache)
    res = _run(["run", str(tiny_config), "--out", str(run_dir)], cache=cache, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["augment"]["counts"]["seeds_resumed"] == 1  # resumed, not redone
    assert _artefacts(run_dir) == _artefacts(uninterrupted)
    for jsonl in run_dir.rglob("*.jsonl"):  # no torn or duplicated records anywhere
        lines = jsonl.read_text().splitlines()
        assert all(json.loads(x) is not None for x in lines), jsonl
        assert len(lines) == len(set(lines)), f"duplicated records in {jsonl}"


def test_unknown_culture_is_a_clear_error(tmp_path):
    res = _run(["run", "--culture", "atlantean", "--out", str(tmp_path / "x")], timeout=120)
    assert res.returncode == 2
    assert "atlantean" in res.stderr and "Traceback" not in res.stderr
