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
from culturellm.review.store import LABELS, ReviewStore, augmented_path, check_reviewer, reviews_path


def make_app(aug: Path | str) -> Any:
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

    return app


def serve(aug: Path | str, *, port: int = 8765, reviewer: str | None = None) -> None:
    """Serve the review page on 127.0.0.1 until interrupted."""
    import uvicorn
    from rich.console import Console

    app = make_app(aug)
    url = f"http://127.0.0.1:{port}/" + (f"?reviewer={quote(reviewer)}" if reviewer else "")
    where = reviews_path(augmented_path(aug))
    Console(stderr=True).print(f"review page on {url} (ratings appended to {where}; Ctrl-C stops)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


_KEYS = {"1": "same", "s": "same", "2": "changed", "c": "changed", "3": "broken", "b": "broken"}


def _page() -> str:
    from importlib.resources import files

    html = files("culturellm.review").joinpath("page.html").read_text(encoding="utf-8")
    return html.replace("__KEYS__", json.dumps(_KEYS))


PAGE = _page()
