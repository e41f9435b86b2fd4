"""OpenAI fine-tuning backend against a real HTTP server on 127.0.0.1 that implements the files and
fine-tuning-job endpoints the openai client uses, moving each job through its statuses."""

from __future__ import annotations

import email
import email.policy
import json
import time
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException, Request
from typer.testing import CliRunner

from culturellm.errors import CultureLLMError, DataError
from culturellm.finetune import FinetuneConfig, finetune
from culturellm.jsonio import read_jsonl, write_jsonl
from culturellm.llm.modelref import read_modelref
from culturellm.prompts import culture_system_prompt, survey_messages
from serve_helpers import uvicorn_thread

OPTIONS = {"1": "Strongly agree", "2": "Agree", "3": "Disagree", "4": "Strongly disagree"}
BASE = "gpt-4o-mini-2024-07-18"


def make_app():
    """A FastAPI app implementing POST /v1/files, POST /v1/fine_tuning/jobs,
    GET /v1/fine_tuning/jobs/{id} and GET /v1/fine_tuning/jobs/{id}/events."""
    app = FastAPI()
    app.state.files = {}
    app.state.jobs = {}
    app.state.events = {}
    app.state.requests = []
    total_steps = 4

    def auth(request: Request) -> None:
        app.state.requests.append(f"{request.method} {request.url.path}")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            raise HTTPException(401, "missing API key")

    def event(job_id: str, message: str, data: dict | None = None, kind: str = "message") -> None:
        evs = app.state.events[job_id]
        evs.append(
            {
                "id": f"ftevent-{job_id}-{len(evs)}",
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": "info",
                "message": message,
                "type": kind,
                "data": data or {},
            }
        )

    @app.post("/v1/files")
    async def create_file(request: Request):
        auth(request)
        body = await request.body()
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        msg = email.message_from_bytes(head + body, policy=email.policy.HTTP)
        fields = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        filename, content = fields["file"]
        purpose = fields["purpose"][1].decode()
        fid = f"file-{len(app.state.files) + 1}"
        app.state.files[fid] = {"content": content, "purpose": purpose}
        return {
            "id": fid,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def job_json(job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    @app.post("/v1/fine_tuning/jobs")
    async def create_job(request: Request):
        auth(request)
        body = await request.json()
        if body.get("training_file") not in app.state.files:
            raise HTTPException(400, "unknown training_file")
        if app.state.files[body["training_file"]]["purpose"] != "fine-tune":
            raise HTTPException(400, "file purpose must be fine-tune")
        jid = f"ftjob-{len(app.state.jobs) + 1}"
        app.state.jobs[jid] = {
            "id": jid,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "model": body["model"],
            "status": "validating_files",
            "fine_tuned_model": None,
            "finished_at": None,
            "error": None,
            "hyperparameters": body.get("hyperparameters", {}),
            "organization_id": "org-test",
            "result_files": [],
            "seed": body.get("seed", 0),
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": None,
            "_step": 0,
        }
        app.state.events[jid] = []
        event(jid, f"Created fine-tuning job: {jid}")
        return job_json(app.state.jobs[jid])

    @app.get("/v1/fine_tuning/jobs/{jid}")
    async def retrieve(jid: str, request: Request):
        auth(request)
        job = app.state.jobs.get(jid)
        if job is None:
            raise HTTPException(404, "no such job")
        # Each poll moves the job one stage on.
        if job["status"] == "validating_files":
            job["status"] = "queued"
            event(jid, "Validating training file: done")
        elif job["status"] == "queued":
            job["status"] = "running"
            event(jid, "Fine-tuning job started")
        elif job["status"] == "running":
            if "fail" in job["model"]:
                job["status"] = "failed"
                job["error"] = {
                    "code": "invalid_model",
                    "message": "model cannot be fine-tuned",
                    "param": None,
                }
                event(jid, "Job failed")
            elif job["_step"] < total_steps:
                job["_step"] += 1
                s = job["_step"]
                event(
                    jid,
                    f"Step {s}/{total_steps}: training loss={1.0 / s:.3f}",
                    {"step": s, "total_steps": total_steps, "train_loss": 1.0 / s},
                    "metrics",
                )
            else:
                job["status"] = "succeeded"
                job["fine_tuned_model"] = f"ft:{job['model']}:culturellm::{jid[-1]}abc"
                job["trained_tokens"] = 1234
                job["finished_at"] = int(time.time())
                event(jid, "The job has successfully completed")
        return job_json(job)

    @app.get("/v1/fine_tuning/jobs/{jid}/events")
    async def events(jid: str, request: Request, limit: int = 20):
        auth(request)
        return {"object": "list", "data": list(reversed(app.state.events[jid]))[:limit], "has_more": False}

    return app


@pytest.fixture(scope="module")
def server():
    app = make_app()
    with uvicorn_thread(app) as port:
        app.state.base_url = f"http://127.0.0.1:{port}/v1"
        yield app


@pytest.fixture
def api_env(monkeypatch, server):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    server.state.requests.clear()
    return server


def survey_file(path: Path, n: int = 12, display: str = "Arabic") -> Path:
    rows = []
    for i in range(n):
        msgs = survey_messages(
            f"Statement number {i} about family life", OPTIONS, culture_system_prompt(display)
        )
        rows.append({"messages": [*msgs, {"role": "assistant", "content": str(i % 4 + 1)}]})
    write_jsonl(path, rows)
    return path


def openai_config(base_url: str, **kw) -> FinetuneConfig:
    return FinetuneConfig.from_preset(
        "cpu-small", backend="openai", base_url=base_url, poll_interval=0.01, **kw
    )


def test_job_runs_to_a_model_reference(tmp_path, api_env):
    data = survey_file(tmp_path / "train.jsonl")
    out = tmp_path / "ft"
    ref_path = finetune(data, BASE, out, openai_config(api_env.state.base_url), progress=False)

    ref = read_modelref(ref_path)
    assert ref.kind == "openai"
    assert ref.model == f"ft:{BASE}:culturellm::1abc"
    assert ref.base == f"openai:{BASE}"
    assert ref.base_url == api_env.state.base_url
    assert ref.cultures == ["arabic"]
    # the uploaded file is exactly the validated records, purpose fine-tune
    (f,) = api_env.state.files.values()
    assert f["purpose"] == "fine-tune"
    uploaded = [json.loads(line) for line in f["content"].decode().splitlines()]
    assert uploaded == [{"messages": r["messages"]} for r in read_jsonl(data)]
    (job,) = api_env.state.jobs.values()
    assert job["hyperparameters"] == {"n_epochs": 3}
    # metrics events were logged, in order, once each
    steps = [r["step"] for r in read_jsonl(out / "loss.jsonl") if "step" in r]
    assert steps == [1, 2, 3, 4]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["model"] == ref.model and summary["cost_estimate_usd"] > 0

    # A second call with the same data and options does nothing (never pays twice).
    api_env.state.requests.clear()
    assert finetune(data, BASE, out, openai_config(api_env.state.base_url), progress=False) == ref_path
    assert api_env.state.requests == []


def test_interrupted_command_reattaches_to_its_job(tmp_path, api_env):
    data = survey_file(tmp_path / "train.jsonl")
    out = tmp_path / "ft"
    cfg = openai_config(api_env.state.base_url)
    finetune(data, BASE, out, cfg, progress=False)
    # Simulate a command killed while polling: job id recorded, no model reference yet.
    state = json.loads((out / "finetune.json").read_text())
    state["status"] = "running"
    (out / "finetune.json").write_text(json.dumps(state))
    (out / "culturellm.json").unlink()
    n_jobs, n_files = len(api_env.state.jobs), len(api_env.state.files)
    api_env.state.requests.clear()

    ref = read_modelref(finetune(data, BASE, out, cfg, progress=False))
    assert ref.model.startswith(f"ft:{BASE}")
    assert (len(api_env.state.jobs), len(api_env.state.files)) == (n_jobs, n_files)
    assert not any(r.startswith("POST") for r in api_env.state.requests)


def test_failed_job_is_one_clear_error(tmp_path, api_env):
    data = survey_file(tmp_path / "train.jsonl")
    with pytest.raises(CultureLLMError, match=r"ftjob-\d+ failed: model cannot be fine-tuned"):
        finetune(
            data, "gpt-fail-model", tmp_path / "ft", openai_config(api_env.state.base_url), progress=False
        )
    state = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert state["status"] == "failed"


def test_cli_openai_backend_and_dry_run(tmp_path, api_env):
    from culturellm.cli import app

    data = survey_file(tmp_path / "train.jsonl", n=20)
    runner = CliRunner()
    args = ["finetune", "--data", str(data), "--backend", "openai", "--base", BASE]
    res = runner.invoke(app, [*args, "--dry-run", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert "cost_usd" in res.output and "billed_tokens" in res.output
    assert api_env.state.requests == []  # offline

    res = runner.invoke(
        app,
        [*args, "--out", str(tmp_path / "o"), "--base-url", api_env.state.base_url, "--no-progress",
         "--poll-interval", "0.01"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert read_modelref(tmp_path / "o" / "culturellm.json").model.startswith(f"ft:{BASE}")


def test_estimate_tokens_and_cost(tmp_path):
    from culturellm.finetune.backends import estimate
    from culturellm.finetune.data import load_records
    from culturellm.finetune.estimate import price_per_mtok

    recs = load_records(survey_file(tmp_path / "t.jsonl", n=10))
    cfg = FinetuneConfig.from_preset("cpu-small", backend="openai", epochs=2)
    est = estimate(recs, BASE, cfg)
    assert est["examples"] == 10 and est["epochs"] == 2
    assert est["billed_tokens"] == 2 * est["tokens_per_epoch"]
    assert est["cost_usd"] == pytest.approx(est["billed_tokens"] * 3.0 / 1e6, abs=1e-4)
    # tokens: roughly characters / 4 plus per-message overhead
    chars = sum(len(m["content"]) for r in recs for m in r.messages)
    assert chars / 4 < est["tokens_per_epoch"] < chars / 4 + 15 * len(recs)
    assert price_per_mtok("gpt-4o-2024-08-06") == 25.0 and price_per_mtok("gpt-4o-mini") == 3.0
    assert price_per_mtok("my-model") is None and price_per_mtok("my-model", 1.5) == 1.5
    assert estimate(recs, "my-model", cfg)["cost_usd"] is None
    with pytest.raises(DataError, match="at least 10"):
        estimate(recs[:5], BASE, cfg)


def test_missing_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = survey_file(tmp_path / "train.jsonl")
    with pytest.raises(CultureLLMError, match="OPENAI_API_KEY"):
        finetune(data, BASE, tmp_path / "ft", openai_config("http://127.0.0.1:9/v1"), progress=False)
