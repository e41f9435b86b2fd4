"""Culture registry: bundled cultures, case-insensitive lookup, ISO3 country cultures, user
cultures.toml (add, override, validation), equal-country weighting and the no-data error."""

from __future__ import annotations

import pytest

from culturellm.cultures import (
    Culture,
    add_culture,
    get_culture,
    list_cultures,
    read_cultures,
    user_cultures_path,
)
from culturellm.errors import DataError, UnknownNameError
from culturellm.seeds import seed_set
from culturellm.wvs import load_answers

BUNDLED = {
    "arabic": ("ar", ("IRQ", "JOR")),
    "bengali": ("bn", ("BGD",)),
    "chinese": ("zh", ("CHN",)),
    "english": ("en", ("USA",)),
    "german": ("de", ("DEU",)),
    "greek": ("el", ("GRC",)),
    "korean": ("ko", ("KOR",)),
    "portuguese": ("pt", ("BRA",)),
    "spanish": ("es", ("ARG", "MEX")),
    "turkish": ("tr", ("TUR",)),
}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh user data directory for tests that write user cultures or aggregates."""
    monkeypatch.setenv("CULTURELLM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_bundled_registry():
    got = {c.name: (c.language, c.countries) for c in list_cultures()}
    assert got == BUNDLED
    assert get_culture("arabic").display == "Arabic"


def test_lookup_is_case_insensitive_and_accepts_culture_objects():
    assert get_culture("Arabic") == get_culture("ARABIC") == get_culture(" arabic ")
    c = Culture("x", "X", "en", ("USA",))
    assert get_culture(c) is c


def test_iso3_country_is_a_culture():
    irq = get_culture("irq")
    assert irq == Culture("IRQ", "Iraq", "ar", ("IRQ",))
    assert get_culture("KOR").display == "South Korea"
    names = [c.name for c in list_cultures(include_countries=True)]
    assert names[:10] == sorted(BUNDLED) and "IRQ" in names and "USA" in names


def test_unknown_culture_lists_known_ones():
    with pytest.raises(UnknownNameError) as e:
        get_culture("klingon")
    msg = str(e.value)
    assert "unknown culture 'klingon'" in msg
    assert all(name in msg for name in BUNDLED) and "IRQ" in msg


def test_known_country_without_data():
    with pytest.raises(DataError, match=r"no WVS data for NGA \(Nigeria\).*culturellm wvs import"):
        get_culture("NGA")


def test_equal_country_weighting():
    """arabic = mean of the Iraq and Jordan distributions (not pooled respondents); n summed."""
    table = load_answers()
    irq, jor = table["IRQ"], table["JOR"]
    for s in seed_set("arabic"):
        parts = [t[s.question_id] for t in (irq, jor) if s.question_id in t]
        expected = {c: sum(p.distribution[c] for p in parts) / len(parts) for c in s.options}
        assert s.distribution == pytest.approx(expected, abs=1e-12)
        assert s.n == sum(p.n for p in parts)
    # pooled respondents would differ when the countries' sample sizes differ
    q = "Q27"
    pooled = {
        c: (irq[q].counts[c] + jor[q].counts[c]) / (sum(irq[q].counts.values()) + sum(jor[q].counts.values()))
        for c in irq[q].counts
    }
    eq = {s.question_id: s for s in seed_set("arabic")}[q].distribution
    assert irq[q].n != jor[q].n and eq != pytest.approx(pooled, abs=1e-9)


def test_add_user_culture_and_override(home):
    c = add_culture("Levant", "ar", ["jor", "IRQ", "JOR"], display="Levantine")
    assert c == Culture("levant", "Levantine", "ar", ("JOR", "IRQ"))
    assert user_cultures_path() == home / "data" / "cultures.toml"
    assert get_culture("LEVANT") == c
    assert len(seed_set("levant")) == 48
    # a user entry overrides the bundled one of the same name
    add_culture("arabic", "ar", ["JOR"])
    assert get_culture("arabic").countries == ("JOR",)
    assert get_culture("arabic").display == "Arabic"
    assert {s.countries for s in seed_set("arabic")} == {("JOR",)}
    assert read_cultures(user_cultures_path())["levant"] == c  # both kept in the file


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("bad name", "ar", ["JOR"]), "culture name"),
        (("x", "arabic", ["JOR"]), "field 'language'"),
        (("x", "ar", ["JORDAN"]), "field 'countries'"),
        (("x", "ar", []), "field 'countries'"),
    ],
)
def test_add_culture_validation(home, args, match):
    with pytest.raises(DataError, match=match):
        add_culture(*args)


def test_culture_without_data(home):
    add_culture("atlantis", "en", ["XYZ"])
    with pytest.raises(DataError, match=r"culture 'atlantis' has no WVS data \(countries XYZ\)"):
        seed_set("atlantis")


def test_culture_with_partial_data_uses_countries_that_have_it(home):
    add_culture("mixed", "en", ["USA", "XYZ"])
    seeds = seed_set("mixed")
    assert len(seeds) == 50 and {s.countries for s in seeds} == {("USA",)}
    assert [s.distribution for s in seeds] == [s.distribution for s in seed_set("english")]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[x\nlanguage = 'en'", "not valid TOML"),
        ("[x]\nlanguage = 'en'\n", r"\[x\]: missing field 'countries'"),
        ("[x]\nlanguage = 'en'\ncountries = ['USA']\ncolour = 1\n", "unknown field 'colour'"),
        ("x = 1\n", r"\[x\] must be a table"),
        ("[x]\nlanguage = 'en'\ncountries = 'USA'\n", "field 'countries'"),
    ],
)
def test_malformed_user_registry_names_file_and_field(home, text, match):
    path = user_cultures_path()
    path.write_text(text)
    with pytest.raises(DataError, match=match) as e:
        get_culture("arabic")
    assert str(path) in str(e.value)
