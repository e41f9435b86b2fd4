"""The run's summary table stays whole when piped, logged or on an 80-column terminal."""

from __future__ import annotations

import pytest

MODELS = ("base", "base + culture system prompt", "CultureLLM-Arabic (LoRA)", "culturellm-one",
          "reference: uniform answer", "reference: German survey")  # fmt: skip


def _summary(terminal: bool) -> str:
    import io

    from rich.console import Console

    from culturellm.pipeline_cli import print_summary

    rows = [
        {"culture": c, "model": m, "tasks": 10 if i < 4 else 0, "mean_macro_f1": 0.456 if i < 4 else None,
         "majority_agreement": 0.9, "one_minus_jsd": 0.721, "one_minus_wasserstein": 0.863,
         "items": "held-out"}
        for c in ("arabic", "korean") for i, m in enumerate(MODELS)
    ]  # fmt: skip
    buf = io.StringIO()
    con = Console(file=buf, width=80, force_terminal=terminal, color_system=None, markup=False)
    print_summary(rows, "culturellm run: runs/demo", con)
    return buf.getvalue()


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_the_run_summary_at_80_columns_keeps_every_model_name_and_header_whole(terminal):
    from culturellm.pipeline_cli import SUMMARY_HEADERS

    out = _summary(terminal)
    lines = out.splitlines()
    assert "…" not in out
    for name in (*MODELS, "held-out", "0.721", "0.863"):
        assert any(name in line for line in lines), (name, out)
    headers = SUMMARY_HEADERS[1:] if terminal else SUMMARY_HEADERS  # a terminal: a table per culture
    assert all(
        any(f"runs/demo{' · ' + c if terminal else ''}" in line for line in lines)
        for c in ("arabic", "korean")
    )
    for header in headers:  # a terminal shows a header's line breaks; Markdown joins them
        parts = header.split("\n") if terminal else [header.replace("\n", " ")]
        for part in parts:
            assert any(part in line for line in lines), (part, out)
    if terminal:
        assert max(len(line) for line in lines) <= 80
    else:
        assert lines[2].startswith("| culture | model | tasks | mean macro-F1 | WVS majority agreement |")
