"""Sharing on the Hub (culturellm.share) against a Hub on 127.0.0.1 (tests/hub_server.py) with
huggingface_hub's real HfApi as the client: push a tiny culture model and its training set, load
`hf:ORG/NAME` in a fresh HF_HOME with the same answer scores, read the cards back with huggingface_hub's
own parser, and the bad inputs (repo ids, token, 401/403/409, a dropped connection) as one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import LocalHub
from serve_helpers import cli_process

TOKEN = "hf_test_token"
SCORE = """
import json, sys
from culturellm.llm import load_backend, parse_spec
from culturellm.llm.base import ScoreRequest
from culturellm.prompts import culture_system_prompt, survey_messages
system = culture_system_prompt("Arabic")
msgs = survey_messages("Family is very important", {"1": "Agree", "2": "Disagree"}, system)
res = load_backend(parse_spec(sys.argv[1])).score([ScoreRequest(msgs, ("1", "2"))])
print(json.dumps([list(r.logprobs) for r in res]))
"""


@pytest.fixture(scope="module")
def trained(trained_arabic) -> tuple[Path, Path]:
    """(training set folder, Arabic adapter directory): tests/conftest.py `trained_arabic`."""
    data, adapter = trained_arabic
    return data.parent, adapter


@pytest.fixture
def hub():
    h = LocalHub((TOKEN,)).start()
    yield h
    h.stop()


def _env(hub: LocalHub, home: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "CULTURELLM_NO_CACHE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    env.pop("HF_HUB_CACHE", None)
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return env


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return cli_process(*args, env=env)


def _python(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -c CODE ARGS` in a subprocess, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )


def _one_line(res: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
def test_round_trip_model_and_training_set(hub, trained, tmp_path) -> None:
    data, model = trained
    env = _env(hub, tmp_path / "home-push")
    res = _cli(["push", str(model), "--repo", "culture-org/tiny-arabic"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    files = hub.files("culture-org/tiny-arabic")
    assert {"adapter_model.safetensors", "adapter_config.json", "culturellm.json", "README.md"} <= set(files)
    assert "adapter_model.safetensors" in hub.repos[("model", "culture-org/tiny-arabic")].lfs  # through LFS
    assert any(line.startswith("PUT /lfs-upload/") for line in hub.log)
    # the card, read back by huggingface_hub's own parser, is what was written
    from huggingface_hub import ModelCard

    from culturellm.share.cards import model_card

    card = ModelCard(files["README.md"].decode())
    written = model_card(model, "culture-org/tiny-arabic")
    assert card.data.to_dict() == written.data.to_dict()
    meta = card.data.to_dict()
    assert meta["library_name"] == "peft" and meta["culture"] == "arabic" and meta["wvs_wave"] == 7
    assert meta["training_target"] == "sharpened" and len(meta["wvs_questions"]) == 6
    # load it in a fresh HF_HOME: the same answer scores as the local directory
    fresh = _env(hub, tmp_path / "home-fresh", token=None)
    got = _python(SCORE, "hf:culture-org/tiny-arabic", env=fresh)
    assert got.returncode == 0, got.stderr[-2000:]
    local = _python(SCORE, str(model), env=fresh)
    assert local.returncode == 0, local.stderr[-2000:]
    a, b = json.loads(got.stdout), json.loads(local.stdout)
    assert max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)) < 1e-5
    # served beside the local directory: two adapters of one base, the base loaded once
    host = (
        "import json, sys; from culturellm.serve.host import load_host; "
        "print(json.dumps(load_host([('hub', sys.argv[1]), ('local', sys.argv[2])]).routes))"
    )
    got = _python(host, "hf:culture-org/tiny-arabic", str(model), env=fresh)
    assert got.returncode == 0, got.stderr[-2000:]
    assert json.loads(got.stdout) == {"hub": "adapter0", "local": "adapter1"}
    # the training set: Parquet through datasets, the same rows back
    res = _cli(["push", str(data), "--repo", "culture-org/tiny-arabic-data"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    ds_files = hub.files("culture-org/tiny-arabic-data", repo_type="dataset")
    assert {"data/train-00000-of-00001.parquet", "train.manifest.json", "README.md"} <= set(ds_files)
    load = (
        "import datasets, json; ds = datasets.load_dataset('culture-org/tiny-arabic-data', split='train');"
        "print(json.dumps(ds.to_list()))"
    )
    got = _python(load, env=fresh)
    assert got.returncode == 0, got.stderr[-3000:]
    from huggingface_hub import DatasetCard

    from culturellm.jsonio import iter_jsonl

    meta = DatasetCard(ds_files["README.md"].decode()).data.to_dict()
    assert meta["json_columns"] == ["target_distribution"]
    back = [
        {k: json.loads(v) if k in meta["json_columns"] else v for k, v in r.items()}
        for r in json.loads(got.stdout)
    ]
    assert back == list(iter_jsonl(data / "train.jsonl"))
    assert meta["target"] == "sharpened" and meta["wvs_wave"] == 7 and meta["cultures"] == ["arabic"]


def test_dry_run_prints_card_and_files_without_a_token(trained, monkeypatch, capsys) -> None:
    from typer.testing import CliRunner

    from culturellm.cli import app

    _, model = trained
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(model.parent / "no-login"))
    before = sorted(p.name for p in model.iterdir())
    res = CliRunner().invoke(app, ["push", str(model), "--repo", "culture-org/x", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "library_name: peft" in res.output and "adapter_model.safetensors" in res.output
    assert "would upload to model repo culture-org/x" in res.output
    assert sorted(p.name for p in model.iterdir()) == before  # nothing written locally


@pytest.mark.parametrize(
    "repo", ["a/../b", "org/../../etc", "<b>org</b>/x", "[red]org[/red]/x", "org", "a/b/c"]
)
def test_bad_repo_ids_are_one_line(repo, trained) -> None:
    from culturellm.errors import CultureLLMError
    from culturellm.share.push import push

    with pytest.raises(CultureLLMError, match="not a Hub repository id") as e:
        push(trained[1], repo, dry_run=True)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_server_faults_are_one_line_and_a_rerun_finishes(hub, trained, tmp_path) -> None:
    _, model = trained
    before = sorted(p.name for p in model.iterdir())
    args = ["push", str(model), "--repo", "culture-org/faults"]
    _one_line(_cli(args, _env(hub, tmp_path / "h", token=None)), 2, "no Hugging Face token")
    _one_line(_cli(args, _env(hub, tmp_path / "h", token="hf_wrong")), 2, "401", "refused the token")
    hub.fail(r"POST /api/repos/create", 403)
    _one_line(_cli(args, _env(hub, tmp_path / "h")), 2, "403", "no write access")
    hub.fail(r"POST /api/models/culture-org/faults/commit/", 409)
    _one_line(_cli(args, _env(hub, tmp_path / "h")), 2, "409", "conflict")
    hub.fail(r"POST /api/models/culture-org/faults/commit/", 0)  # the connection dropped mid-push
    _one_line(_cli(args, _env(hub, tmp_path / "h")), 1, "run the command again")
    assert "adapter_model.safetensors" not in hub.files("culture-org/faults")  # nothing committed
    puts = sum(line.startswith("PUT /lfs-upload/") for line in hub.log)
    res = _cli(args, _env(hub, tmp_path / "h"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "adapter_model.safetensors" in hub.files("culture-org/faults")
    assert sum(line.startswith("PUT /lfs-upload/") for line in hub.log) == puts  # not uploaded twice
    assert sorted(p.name for p in model.iterdir()) == before


STAGE = """
import json, sys
from pathlib import Path
from rich.console import Console
from culturellm.config import RunConfig
from culturellm.cultures import get_culture
from culturellm.runlayout import RunLayout
from culturellm.stages import STAGES, Run

cfg = RunConfig(name="tiny", cultures=["arabic"], push={"to": "culture-org"})
lay = RunLayout(Path(sys.argv[1]))
run = Run(cfg, lay, [get_culture("arabic")], ["arabic"], console=Console(stderr=True))
print(json.dumps(next(s for s in STAGES if s.name == "push").run(run).counts))
"""


@pytest.mark.slow
def test_run_push_stage_is_resumable_and_pushes_nothing_twice(hub, trained, tmp_path) -> None:
    import shutil

    data, model = trained
    root = tmp_path / "runs" / "tiny"
    shutil.copytree(model, root / "models" / "arabic")
    shutil.copytree(data, root / "data" / "arabic")
    from culturellm.jsonio import write_jsonl

    spec = str(root / "models" / "arabic")  # the run's results of this model go into its card
    write_jsonl(
        root / "eval" / "arabic" / "results.jsonl",
        [
            {
                "task": "arabic/offensive_detect",
                "model": "culturellm",
                "spec": spec,
                "system": "culture",
                "macro_f1": 0.5,
                "n": 4,
            },
            {"task": "arabic/offensive_detect", "model": "base", "spec": "bundled", "macro_f1": 0.4, "n": 4},
        ],
    )
    write_jsonl(
        root / "eval" / "arabic" / "align.jsonl",
        [
            {
                "model": "culturellm",
                "spec": spec,
                "culture": "arabic",
                "split": "x",
                "majority_agreement": 0.75,
                "one_minus_jsd": 0.625,
            },
        ],
    )
    env = _env(hub, tmp_path / "home")

    def stage() -> subprocess.CompletedProcess:
        return _python(STAGE, str(root), env=env)

    def commits(repo: str) -> int:
        return sum(line.startswith("POST /api/") and f"{repo}/commit/" in line for line in hub.log)

    hub.fail(r"POST /api/datasets/culture-org/tiny-arabic-data/commit/", 0)  # killed half-way
    first = stage()
    assert first.returncode == 1, first.stderr[-2000:]
    record = json.loads((root / "push.json").read_text())
    assert list(record) == ["culture-org/tiny-arabic"] and record["culture-org/tiny-arabic"]["commit"]
    second = stage()  # the rerun pushes what is left, not the model again
    assert second.returncode == 0, second.stderr[-2000:]
    assert commits("culture-org/tiny-arabic") == 1 and "pushed before" in second.stderr
    counts = json.loads(second.stdout)["commits"]
    assert set(counts) == {"culture-org/tiny-arabic", "culture-org/tiny-arabic-data"}
    assert (
        counts["culture-org/tiny-arabic"] == hub.repos[("model", "culture-org/tiny-arabic")].branches["main"]
    )
    from huggingface_hub import ModelCard

    card = ModelCard(hub.files("culture-org/tiny-arabic")["README.md"].decode())
    got = sorted((r.task_type, r.metric_type, r.metric_value) for r in card.data.eval_results)
    assert got == [
        ("text-classification", "f1", 0.5),
        ("wvs-alignment", "majority_agreement", 0.75),
        ("wvs-alignment", "one_minus_jsd", 0.625),
    ]
    third = stage()  # everything pushed: nothing is sent again
    assert third.returncode == 0 and json.loads(third.stdout)["commits"] == counts
    assert commits("culture-org/tiny-arabic") == 1 and commits("culture-org/tiny-arabic-data") == 2


def test_run_push_to_flag_and_toml(tmp_path) -> None:
    from typer.testing import CliRunner

    from culturellm.cli import app

    res = CliRunner().invoke(
        app, ["run", "--check", "--push-to", "culture-org", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert 'to = "culture-org"' in res.output
    (tmp_path / "bad.toml").write_text('[push]\nto = "a/../b"\n')
    from culturellm.config import load_config
    from culturellm.errors import DataError

    with pytest.raises(DataError, match=r"bad.toml: field 'push.to': not a Hub organisation"):
        load_config(tmp_path / "bad.toml")
