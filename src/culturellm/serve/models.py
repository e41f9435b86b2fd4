"""GET /v1/models, GET /v1/models/{name}, GET /health."""

from __future__ import annotations

from typing import Any

from culturellm.serve.serving import Serving


class ServingModels(Serving):
    def card(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": self.created,
            "owned_by": "culturellm",
            "max_model_len": self.context or None,
        }

    async def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.card(n) for n in self.host.names]}

    async def model_info(self, name: str) -> dict[str, Any]:
        return self.card(self.route(name))

    async def health(self) -> Any:
        """200 with `"status": "ok"` while the worker runs; 503 with `"status": "dead"` (its thread is
        gone) or `"stuck"` (one batch ran far past the time limit)."""
        from fastapi.responses import JSONResponse

        host, worker = self.host, self.worker
        state = worker.state()
        body = {
            "status": state,
            "models": host.names,
            "model": host.names[0],
            "base": host.base,
            "busy": worker.busy,
            "queued": worker.queue.qsize(),
            "batches": worker.batches,
            "largest_batch": worker.largest,
            "cancelled": worker.cancelled,
            "failed": worker.failed,
        }
        return JSONResponse(body, status_code=200 if state == "ok" else 503)
