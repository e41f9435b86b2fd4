import subprocess
import sys

import pytest

from culturellm.errors import DataError
from culturellm.jsonio import append_jsonl, iter_jsonl, read_jsonl, write_jsonl
from culturellm.llm.modelref import ModelRef, find_modelref, read_modelref, write_modelref
from culturellm.prompts import survey_messages


@pytest.mark.slow  # the real script in its own process
def test_cli_version():
    out = subprocess.run(
        [sys.executable, "-m", "culturellm.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "culturellm" in out.stdout


def test_jsonl_roundtrip_and_torn_tail(tmp_path):
    p = tmp_path / "a.jsonl"
    write_jsonl(p, [{"a": 1}])
    append_jsonl(p, [{"a": 2}])
    assert [r["a"] for r in read_jsonl(p)] == [1, 2]
    with open(p, "a") as f:
        f.write('{"a": 3')  # killed mid-write
    assert [r["a"] for r in read_jsonl(p, tolerate_torn_tail=True)] == [1, 2]
    with pytest.raises(DataError, match=r"a.jsonl:3"):
        list(iter_jsonl(p))


def test_modelref_roundtrip(tmp_path):
    write_modelref(tmp_path, ModelRef(kind="peft-adapter", base="bundled", cultures=["arabic"]))
    ref_file = find_modelref(tmp_path)
    assert ref_file is not None
    ref = read_modelref(ref_file)
    assert ref.base == "bundled" and ref.resolve_path(ref_file) == tmp_path.resolve()
    (tmp_path / "bad.json").write_text('{"kind": "nope", "base": "x"}')
    with pytest.raises(DataError, match="field 'kind'"):
        read_modelref(tmp_path / "bad.json")


def test_survey_messages_format():
    msgs = survey_messages("Q?", {"1": "Yes", "2": "No"}, system="S")
    assert msgs[0] == {"role": "system", "content": "S"}
    assert "1. Yes\n2. No" in msgs[1]["content"]
