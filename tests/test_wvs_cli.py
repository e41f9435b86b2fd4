"""CLI of the WVS area: `culturellm cultures [add]`, `seeds`, `wvs import`, `wvs questions`, and the
one-line errors (exit code 2, no traceback). Commands run in-process through culturellm.cli.main (the
real entry point, with its error handling); two checks also run the installed `culturellm` script."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pyreadstat
import pytest

from culturellm.wvs import load_questions
from serve_helpers import culturellm_exe

EXPECTED_SEEDS = {"arabic": 48, "chinese": 32, "spanish": 50, "english": 50, "turkish": 50, "korean": 50}


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_cultures_table(cli):
    code, out, _ = cli("cultures")
    assert code == 0
    for name in ("arabic", "bengali", "chinese", "english", "german", "greek", "korean", "portuguese"):
        assert name in out
    row = next(line for line in out.splitlines() if "arabic" in line)
    assert "IRQ (Iraq)" in row and "JOR (Jordan)" in row and "48" in row and " ar " in row
    assert "32" in next(line for line in out.splitlines() if "chinese" in line)


def test_cultures_json_and_all(cli):
    code, out, _ = cli("cultures", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 10
    assert {r["name"]: r["questions"] for r in rows}["arabic"] == 48
    code, out, _ = cli("cultures", "--all", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 22 and rows[-1] == {
        "name": "USA",
        "display": "United States",
        "language": "en",
        "countries": ["USA"],
        "questions": 50,
    }


@pytest.mark.parametrize(("culture", "count"), EXPECTED_SEEDS.items())
def test_seeds_json(cli, culture, count):
    code, out, err = cli("seeds", "--culture", culture, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == count
    questions = {q.id: q for q in load_questions()}
    for r in rows:
        q = questions[r["question_id"]]
        assert r["text"] == q.text and r["topic"] == q.topic and r["options"] == q.options
        assert list(r["distribution"]) == list(q.options)
        assert sum(r["distribution"].values()) == pytest.approx(1.0, abs=1e-9)
        assert isinstance(r["majority"], str) and r["majority"] in q.options
        assert r["distribution"][r["majority"]] == max(r["distribution"].values())
        assert isinstance(r["n"], int) and r["n"] > 0
        assert r["countries"] and r["majority_label"] == q.options[r["majority"]]
    if culture == "arabic":
        assert {r["question_id"] for r in rows}.isdisjoint({"Q36", "Q226"})


def test_seeds_table(cli):
    code, out, _ = cli("seeds", "--culture", "Korean")
    assert code == 0
    assert "Korean seeds: 50 questions, countries KOR" in out
    row = next(line for line in out.splitlines() if "Q27" in line)
    assert "2 Agree" in row and "█" in row and "1245" in row
    code, out, _ = cli("seeds", "-c", "irq", "--width", "20")
    assert code == 0 and "Iraq seeds: 48 questions" in out and "One of my main goal…" in out


def test_wvs_questions(cli):
    code, out, _ = cli("wvs", "questions", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert (
        code == 0
        and len(rows) == 50
        and rows[15]["options"] == {"2": "Agree", "1": "Hard to say", "0": "Disagree"}
    )


def test_cultures_add(cli):
    code, _, err = cli(
        "cultures", "add", "levant", "--language", "ar", "--countries", "JOR,IRQ", "--display", "Levantine"
    )
    assert code == 0 and "added culture levant" in err
    code, out, _ = cli("cultures")
    assert "Levantine" in out
    code, out, _ = cli("seeds", "--culture", "levant", "--json")
    assert code == 0 and len(out.splitlines()) == 48
    code, _, err = cli("cultures", "add", "future", "-l", "en", "--countries", "NGA")
    assert code == 0 and "no WVS data yet for NGA" in err


def synthetic_release(tmp_path):
    """Two countries by numeric code only, with weights: Nigeria (566) and Kenya (404)."""
    df = pd.DataFrame(
        {
            "B_COUNTRY": [566, 566, 566, 566, 404, 404],
            "W_WEIGHT": [1.0, 1.0, 3.0, 1.0, 1.0, 1.0],
            "Q27": [1, 1, 2, -1, 3, 3],
            "Q28": [-4, -4, -4, -4, 2, 1],
        }
    )
    return df


def test_wvs_import_then_seeds(cli, tmp_path):
    p = tmp_path / "release.csv"
    synthetic_release(tmp_path).to_csv(p, index=False)
    code, out, err = cli("wvs", "import", str(p), "--countries", "NGA")
    assert code == 0, err
    assert "NGA" in out and "Nigeria" in out and "KEN" not in out
    assert "1 countries imported (weighted by W_WEIGHT)" in err
    code, out, _ = cli("seeds", "--culture", "nga", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    # Q27 weighted: 1 -> 2, 2 -> 3: majority "2" (unweighted it would be "1"); Q28 never asked
    assert [r["question_id"] for r in rows] == ["Q27"]
    assert rows[0]["distribution"] == {"1": 0.4, "2": 0.6, "3": 0.0, "4": 0.0}
    assert rows[0]["majority"] == "2" and rows[0]["n"] == 3 and rows[0]["countries"] == ["NGA"]
    code, _, err = cli("seeds", "--culture", "KEN")
    assert_one_line_error(code, err, "no WVS data for KEN (Kenya)")
    # import the rest unweighted, as SPSS: KEN becomes available, NGA is replaced
    sav = tmp_path / "release.sav"
    pyreadstat.write_sav(synthetic_release(tmp_path), sav)
    code, out, err = cli("wvs", "import", str(sav), "--no-weights", "--no-progress")
    assert code == 0, err
    code, out, _ = cli("seeds", "--culture", "NGA", "--json")
    assert json.loads(out.splitlines()[0])["majority"] == "1"
    code, out, _ = cli("cultures", "--all", "--json")
    assert {"KEN", "NGA"} <= {json.loads(line)["name"] for line in out.splitlines()}


def test_errors_are_one_line_exit_2(cli, tmp_path):
    code, _, err = cli("seeds", "--culture", "klingon")
    assert_one_line_error(code, err, "unknown culture 'klingon'", "arabic", "turkish")

    bad = tmp_path / "bad.csv"
    bad.write_text("Q27,Q28\n1,2\n")
    code, _, err = cli("wvs", "import", str(bad))
    assert_one_line_error(code, err, "bad.csv", "missing column B_COUNTRY_ALPHA")

    noq = tmp_path / "noq.csv"
    noq.write_text("B_COUNTRY_ALPHA,X\nIRQ,1\n")
    code, _, err = cli("wvs", "import", str(noq))
    assert_one_line_error(code, err, "noq.csv", "missing column Q27")

    garbage = tmp_path / "garbage.sav"
    garbage.write_bytes(b"\x00\x01 not spss")
    code, _, err = cli("wvs", "import", str(garbage))
    assert_one_line_error(code, err, "garbage.sav", "not a readable SPSS .sav file")

    code, _, err = cli("wvs", "import", str(tmp_path / "missing.dta"))
    assert_one_line_error(code, err, "missing.dta: file not found")

    good = tmp_path / "good.csv"
    good.write_text("B_COUNTRY_ALPHA,Q27\nIRQ,1\n")
    code, _, err = cli("wvs", "import", str(good), "--countries", "NGA")
    assert_one_line_error(code, err, "no rows for NGA")

    cli("cultures", "add", "atlantis", "--language", "en", "--countries", "XYZ")
    code, _, err = cli("seeds", "--culture", "atlantis")
    assert_one_line_error(code, err, "culture 'atlantis' has no WVS data")

    code, _, err = cli("cultures", "add", "x", "--language", "english", "--countries", "USA")
    assert_one_line_error(code, err, "field 'language'")


@pytest.mark.slow  # the real script in its own process
def test_installed_script(tmp_path):
    env = {**os.environ, "CULTURELLM_HOME": str(tmp_path / "home")}
    ok = subprocess.run(
        [*culturellm_exe(), "seeds", "--culture", "arabic", "--json"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 48
    bad = subprocess.run(
        [*culturellm_exe(), "seeds", "--culture", "klingon"], capture_output=True, text=True, env=env
    )
    assert_one_line_error(bad.returncode, bad.stderr, "unknown culture 'klingon'")
    assert bad.stdout == ""
