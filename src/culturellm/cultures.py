"""Culture registry: a culture is a name, a display name, a language (ISO 639-1) and the WVS countries
(ISO 3166 alpha-3) whose answers define it.

Sources, later ones overriding earlier ones by name: the bundled `culturellm/data/cultures.toml`, then
the user's `cultures.toml` in `culturellm.paths.data_dir()` (same shape; `add_culture` writes it).
Besides the registered names, any ISO3 country code with WVS data is a culture by itself
(`get_culture("NGA")` -> Culture("NGA", "Nigeria", "en", ("NGA",))).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from culturellm.errors import DataError, UnknownNameError
from culturellm.jsonio import atomic_write_text, read_toml
from culturellm.names import is_safe_name
from culturellm.paths import data_dir, layered

CULTURES_FILE = "cultures.toml"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_LANG = re.compile(r"^[a-z]{2}$")
_ISO3 = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Culture:
    """A culture: `name` (lower-case registry key, or an ISO3 code for a single-country culture),
    `display` (used in prompts: "You are an Arabic chatbot..."), `language` (ISO 639-1) and `countries`
    (ISO3 codes, weighted equally)."""

    name: str
    display: str
    language: str
    countries: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "display": self.display,
            "language": self.language,
            "countries": list(self.countries),
        }


def _validate(path: Path | str, name: str, display: str | None, language: str, countries: object) -> Culture:
    where = f"{path}: [{name}]"
    if not _NAME.fullmatch(name) or not is_safe_name(name):
        raise DataError(f"{where}: culture name must be lower-case letters, digits, '-' or '_' (at most 64)")
    if not isinstance(language, str) or not _LANG.match(language):
        raise DataError(f"{where}: field 'language' must be a two-letter ISO 639-1 code, got {language!r}")
    if (
        not isinstance(countries, list | tuple)
        or not countries
        or not all(isinstance(c, str) and _ISO3.fullmatch(c.upper()) for c in countries)
    ):
        raise DataError(f"{where}: field 'countries' must be a non-empty list of ISO3 codes like \"IRQ\"")
    if display is not None and (not isinstance(display, str) or not display.strip()):
        raise DataError(f"{where}: field 'display' must be a non-empty string")
    codes = tuple(dict.fromkeys(c.upper() for c in countries))
    return Culture(name, display.strip() if display else name.capitalize(), language, codes)


def read_cultures(path: str | Path) -> dict[str, Culture]:
    """Parse a cultures TOML file; DataError names the file and the bad field."""
    path = Path(path)
    raw = read_toml(path)
    out: dict[str, Culture] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: [{name}] must be a table with language and countries")
        unknown = set(entry) - {"display", "language", "countries"}
        if unknown:
            raise DataError(f"{path}: [{name}]: unknown field '{sorted(unknown)[0]}'")
        for key in ("language", "countries"):
            if key not in entry:
                raise DataError(f"{path}: [{name}]: missing field '{key}'")
        key = name.lower()
        out[key] = _validate(path, key, entry.get("display"), entry["language"], entry["countries"])
    return out


def user_cultures_path() -> Path:
    return data_dir() / CULTURES_FILE


def registry() -> dict[str, Culture]:
    """All registered cultures by name: bundled, overridden/extended by the user's cultures.toml."""
    return layered(CULTURES_FILE, read_cultures)


def list_cultures(*, include_countries: bool = False) -> list[Culture]:
    """Registered cultures sorted by name; with include_countries, also every country with WVS data that
    is not already a registered name (as a single-country culture)."""
    reg = registry()
    out = [reg[k] for k in sorted(reg)]
    if include_countries:
        from culturellm.wvs.answers import available_countries

        out += [country_culture(c) for c in available_countries() if c.lower() not in reg]
    return out


def country_culture(code: str) -> Culture:
    """The single-country culture of an ISO3 code (display name from the WVS country table)."""
    from culturellm.wvs.countries import COUNTRIES, country_name

    code = code.upper()
    c = COUNTRIES.get(code)
    return Culture(code, country_name(code), c.language if c else "en", (code,))


def get_culture(name: str | Culture) -> Culture:
    """Look a culture up by name (case-insensitive), or by an ISO3 country code with WVS data.

    Raises UnknownNameError listing the known cultures; DataError when `name` is a known WVS country
    code without data (import a WVS release first)."""
    if isinstance(name, Culture):
        return name
    key = str(name).strip()
    reg = registry()
    if key.lower() in reg:
        return reg[key.lower()]
    from culturellm.wvs.answers import available_countries
    from culturellm.wvs.countries import COUNTRIES

    have = available_countries()
    if key.upper() in have:
        return country_culture(key)
    if key.upper() in COUNTRIES:
        raise DataError(
            f"no WVS data for {key.upper()} ({COUNTRIES[key.upper()].name}): import a WVS wave-7 release "
            "with `culturellm wvs import FILE`"
        )
    raise UnknownNameError(
        f"unknown culture {name!r}; known cultures: {', '.join(sorted(reg))} "
        f"(or an ISO3 country code with WVS data: {', '.join(have)})"
    )


def add_culture(name: str, language: str, countries: Sequence[str], display: str | None = None) -> Culture:
    """Add (or replace) a culture in the user's cultures.toml and return it."""
    import tomli_w

    path = user_cultures_path()
    culture = _validate(path, name.strip().lower(), display, language.strip().lower(), list(countries))
    current = read_cultures(path) if path.exists() else {}
    current[culture.name] = culture
    doc = {
        c.name: {"display": c.display, "language": c.language, "countries": list(c.countries)}
        for c in current.values()
    }
    atomic_write_text(path, tomli_w.dumps(doc))
    return culture
