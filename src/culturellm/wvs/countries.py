"""ISO 3166 codes of the WVS wave-7 countries and territories: numeric -> alpha-3, display name and main
language (ISO 639-1). Used to map the numeric `B_COUNTRY` column to alpha-3 when `B_COUNTRY_ALPHA` is
absent, and to name single-country cultures (`--culture NGA` -> "Nigeria")."""

from __future__ import annotations

from typing import NamedTuple


class Country(NamedTuple):
    alpha3: str
    numeric: int
    name: str
    language: str  # ISO 639-1 code of the main survey language


_TABLE = """
AND 20 Andorra ca
ARG 32 Argentina es
ARM 51 Armenia hy
AUS 36 Australia en
BGD 50 Bangladesh bn
BOL 68 Bolivia es
BRA 76 Brazil pt
CAN 124 Canada en
CHL 152 Chile es
CHN 156 China zh
COL 170 Colombia es
CYP 196 Cyprus el
CZE 203 Czechia cs
DEU 276 Germany de
ECU 218 Ecuador es
EGY 818 Egypt ar
ETH 231 Ethiopia am
GBR 826 Great_Britain en
GRC 300 Greece el
GTM 320 Guatemala es
HKG 344 Hong_Kong zh
IDN 360 Indonesia id
IRN 364 Iran fa
IRQ 368 Iraq ar
JOR 400 Jordan ar
JPN 392 Japan ja
KAZ 398 Kazakhstan kk
KEN 404 Kenya sw
KGZ 417 Kyrgyzstan ky
KOR 410 South_Korea ko
LBN 422 Lebanon ar
LBY 434 Libya ar
MAC 446 Macau zh
MAR 504 Morocco ar
MDV 462 Maldives dv
MEX 484 Mexico es
MMR 104 Myanmar my
MNG 496 Mongolia mn
MYS 458 Malaysia ms
NGA 566 Nigeria en
NIC 558 Nicaragua es
NIR 909 Northern_Ireland en
NLD 528 Netherlands nl
NZL 554 New_Zealand en
PAK 586 Pakistan ur
PER 604 Peru es
PHL 608 Philippines tl
PRI 630 Puerto_Rico es
ROU 642 Romania ro
RUS 643 Russia ru
SGP 702 Singapore en
SRB 688 Serbia sr
SVK 703 Slovakia sk
THA 764 Thailand th
TJK 762 Tajikistan tg
TUN 788 Tunisia ar
TUR 792 Turkey tr
TWN 158 Taiwan zh
UKR 804 Ukraine uk
URY 858 Uruguay es
USA 840 United_States en
UZB 860 Uzbekistan uz
VEN 862 Venezuela es
VNM 704 Vietnam vi
ZWE 716 Zimbabwe sn
"""

COUNTRIES: dict[str, Country] = {}
for _line in _TABLE.strip().splitlines():
    _a3, _num, _name, _lang = _line.split()
    COUNTRIES[_a3] = Country(_a3, int(_num), _name.replace("_", " "), _lang)

BY_NUMERIC: dict[int, str] = {c.numeric: c.alpha3 for c in COUNTRIES.values()}


def country_name(alpha3: str) -> str:
    """Display name of an ISO3 code (the code itself when it is not in the table)."""
    c = COUNTRIES.get(alpha3.upper())
    return c.name if c else alpha3.upper()


def alpha3_from_numeric(code: int) -> str | None:
    """ISO3 code of a numeric ISO 3166 code as used by WVS `B_COUNTRY` (None when unknown)."""
    return BY_NUMERIC.get(int(code))
