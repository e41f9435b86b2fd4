"""CLI command of culturellm.serve: `culturellm serve`."""

from __future__ import annotations

import typer

from culturellm.config_cli import config_command, server_key
from culturellm.llm.placement import DEVICE_HELP, DTYPE_HELP, Device, Dtype
from culturellm.serve.protocol import Limits


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("serve")(serve)


@config_command(Limits, panel="Request limits")
def serve(
    limits: Limits,
    model: list[str] = typer.Option(
        ["bundled"],
        "--model",
        "-m",
        help="Local model spec or culture model directory, optionally NAME=SPEC (repeatable: PEFT "
        "adapters of one base share it in memory and are routed by the request's model name).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 exposes it)."),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="TCP port (1-65535)."),
    name: list[str] = typer.Option(
        [], "--name", help="Model id clients send for the matching --model (default: the spec)."
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Most concurrent requests per forward pass."
    ),
    device: Device | None = typer.Option(None, "--device", help=DEVICE_HELP),
    dtype: Dtype | None = typer.Option(None, "--dtype", help=DTYPE_HELP),
    api_key: str | None = server_key(
        "Require 'Authorization: Bearer KEY' on every request (/health excepted)."
    ),
) -> None:
    """Serve local models over an OpenAI-compatible API (/v1/models, /v1/chat/completions, ...).

    Requests share one model worker, interleaved by request (a big request does not hold the others);
    each request is cut after --request-timeout seconds (default 300) of model time."""
    from culturellm.serve import serve as run_server

    run_server(
        model,
        host=host,
        port=port,
        name=name,
        batch_size=batch_size,
        dtype=dtype,
        device=device,
        api_key=api_key or None,
        limits=limits,
    )
