"""The review page: a small FastAPI app serving one HTML page and two JSON routes.

    GET  /                      the page (seed and candidate side by side, keyboard shortcuts)
    GET  /api/items?reviewer=R  the samples and R's latest ratings
    POST /api/ratings           {"reviewer", "id", "rating"} -> appended to AUG_DIR/reviews.jsonl

Keys: 1 / s = same meaning, 2 / c = changed meaning, 3 / b = broken (each rates and moves on),
j or Right = next, k or Left = previous, u = next unrated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from culturellm.errors import DataError
from culturellm.review.guard import ReviewGuard, is_loopback
from culturellm.review.store import LABELS, ReviewStore, augmented_path, check_reviewer, reviews_path


def make_app(aug: Path | str, *, host: str = "127.0.0.1", api_key: str | None = None) -> Any:
    """The review app behind its guard (culturellm.review.guard: Host check, body limit, API key)."""
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse

    store = ReviewStore(aug)
    app = FastAPI(title="culturellm review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/api/items")
    def items(reviewer: str = "") -> dict[str, Any]:
        ratings: dict[str, str] = {}
        if reviewer:
            try:
                name = check_reviewer(reviewer)
            except DataError as e:
                raise HTTPException(400, str(e)) from None
            ratings = {sid: v for (r, sid), v in store.latest().items() if r == name}
        return {"items": store.items, "ratings": ratings, "labels": LABELS, "file": str(store.path)}

    @app.post("/api/ratings")
    def rate(body: dict[str, str] = Body(...)) -> dict[str, Any]:
        try:
            row = store.rate(body.get("reviewer", ""), body.get("id", ""), body.get("rating", ""))
        except DataError as e:
            raise HTTPException(400, str(e)) from None
        return {"ok": True, "rating": row}

    return ReviewGuard(app, host=host, api_key=api_key)


def serve(
    aug: Path | str,
    *,
    port: int = 8765,
    reviewer: str | None = None,
    host: str = "127.0.0.1",
    api_key: str | None = None,
) -> None:
    """Serve the review page on `host` (127.0.0.1 by default) until interrupted. Bound beyond this
    machine it needs an API key (DataError otherwise)."""
    from rich.console import Console

    from culturellm.listen import bind, run_server

    if not is_loopback(host) and not api_key:
        raise DataError(f"--host {host} exposes the review page beyond this machine: give --api-key KEY too")
    app = make_app(aug, host=host, api_key=api_key)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?reviewer={quote(reviewer)}" if reviewer else "")
    key = " + #key=KEY" if api_key else ""
    where = reviews_path(augmented_path(aug))
    Console(stderr=True, markup=False, emoji=False, highlight=False).print(
        f"review page on {url}{key} (ratings appended to {where}; Ctrl-C stops)"
    )
    run_server(app, sock)


_KEYS = {"1": "same", "s": "same", "2": "changed", "c": "changed", "3": "broken", "b": "broken"}


def _page() -> str:
    from importlib.resources import files

    html = files("culturellm.review").joinpath("page.html").read_text(encoding="utf-8")
    return html.replace("__KEYS__", json.dumps(_KEYS))


PAGE = _page()
