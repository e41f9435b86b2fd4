"""End-to-end: `culturellm run` on a tiny configuration with the bundled models, and resumption after
SIGKILL at several points giving the same artefacts as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from culturellm.config import RunConfig, load_config, save_config
from culturellm.errors import DataError

TINY = """
name = "tiny"
cultures = ["arabic"]
seed = 0

[augment]
n = 1
m = 1
limit_seeds = 3

[dataset]
holdout_questions = 1

[finetune]
max_steps = 4
batch_size = 4

[evaluate]
limit = 6
tasks = ["offensive_detect_mp", "spam_detect"]

[align]
min_heldout = 1
"""


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "culturellm.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
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
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    res = _run(["run", str(tiny_config), "--out", str(run_dir)], timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir


def test_config_roundtrip_and_errors(tmp_path, tiny_config):
    cfg = load_config(tiny_config)
    assert cfg.augment.limit_seeds == 3 and cfg.evaluate.limit == 6
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
    ]
    assert manifest["versions"]["torch"] and manifest["inputs"]["questions"]
    assert (run_dir / "config.toml").exists() and (run_dir / "report.md").exists()
    written = load_config(run_dir / "config.toml")  # every field, reloadable as it was run
    assert written.finetune.max_steps == 4 and written.align.min_heldout == 1
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
    res = _run(["run", str(tiny_config), "--out", str(uninterrupted)], timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("up to date, skipped") == 7
    after = json.loads((uninterrupted / "manifest.json").read_text())
    assert after["stages"] == json.loads(before)["stages"]


def _wait_for_stage(run_dir: Path, stage: str, proc: subprocess.Popen, timeout: float = 600) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return False
        try:
            st = json.loads((run_dir / "manifest.json").read_text())["stages"].get(stage, {})
        except (FileNotFoundError, json.JSONDecodeError):
            st = {}
        if st.get("status") in ("running", "done"):
            return True
        time.sleep(0.2)
    return False


def test_sigkill_resume_matches_uninterrupted(uninterrupted, tiny_config, tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "culturellm.cli", "run", str(tiny_config), "--out", str(run_dir)]
    for stage, delay in (("augment", 4.0), ("finetune", 6.0), ("evaluate", 3.0), ("align", 1.0)):
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
        )
        try:
            if _wait_for_stage(run_dir, stage, proc):
                time.sleep(delay)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    res = _run(["run", str(tiny_config), "--out", str(run_dir)], timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _artefacts(run_dir) == _artefacts(uninterrupted)
    for jsonl in run_dir.rglob("*.jsonl"):  # no torn or duplicated records anywhere
        lines = jsonl.read_text().splitlines()
        assert all(json.loads(x) is not None for x in lines), jsonl
        assert len(lines) == len(set(lines)), f"duplicated records in {jsonl}"


def test_unknown_culture_is_a_clear_error(tmp_path):
    res = _run(["run", "--culture", "atlantean", "--out", str(tmp_path / "x")], timeout=120)
    assert res.returncode == 2
    assert "atlantean" in res.stderr and "Traceback" not in res.stderr
