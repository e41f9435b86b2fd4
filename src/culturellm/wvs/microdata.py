"""Read official WVS wave-7 microdata (.csv, .csv.gz/.zip, SPSS .sav, Stata .dta).

Only the needed columns are read: the country (`B_COUNTRY_ALPHA`, else the numeric ISO 3166
`B_COUNTRY` mapped to alpha-3), the weight `W_WEIGHT` when present, and the seed question columns.
Column names match case-insensitively. SPSS/Stata value labels are ignored: answers are codes
(pyreadstat turns SPSS user-missing values and Stata extended missing values into NaN, i.e. missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from culturellm.errors import DataError
from culturellm.numbers import plain
from culturellm.regularfiles import check_input
from culturellm.wvs.countries import alpha3_from_numeric
from culturellm.wvs.questions import Question, load_questions

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

COUNTRY_ALPHA = "B_COUNTRY_ALPHA"
COUNTRY_NUMERIC = "B_COUNTRY"
WEIGHT = "W_WEIGHT"
SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".zip", ".sav", ".zsav", ".dta")
CHUNK_ROWS = 20_000
#: Survey weights are design weights around 1; anything this large is a broken file (and a sum of such
#: weights would overflow the aggregates).
MAX_WEIGHT = 1e6
#: Leading bytes of binary files that are sometimes renamed .csv by mistake.
_MAGIC = (
    (b"$FL2", "an SPSS .sav file: name it .sav"),
    (b"$FL3", "an SPSS .zsav file: name it .zsav"),
    (b"<stata_dta>", "a Stata .dta file: name it .dta"),
    (b"\x1f\x8b", "a gzip file: name it .csv.gz"),
    (b"PK\x03\x04", "a zip file (an Excel .xlsx is one too): name it .zip if it holds one CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/OLE file: export it as CSV"),
)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".sav", ".zsav")):
        return "sav"
    if name.endswith(".dta"):
        return "dta"
    if name.endswith((".csv", ".csv.gz", ".csv.zip", ".zip")):
        return "csv"
    raise DataError(f"{path}: unsupported file type (expected one of {', '.join(SUFFIXES)})")


def expand_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus the microdata files (by suffix) inside named directories."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(SUFFIXES))
            if not found:
                raise DataError(f"{p}: no WVS microdata files ({', '.join(SUFFIXES)}) in this directory")
            out.extend(found)
        elif p.exists():
            check_input(p, "data")  # a FIFO or a device: one line, never read
            out.append(p)
        else:
            raise DataError(f"{p}: file not found")
    return out


def _first_line(path: Path) -> str:
    import gzip
    import zipfile

    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                return f.readline()
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DataError(
                        f"{path}: a zip file must hold exactly one CSV file, found {len(members)}"
                    )
                with z.open(members[0]) as f:
                    return f.readline().decode("utf-8", errors="replace")
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline()
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def _sniff_sep(path: Path) -> str:
    """The delimiter of a CSV file: the most frequent of , ; tab | in its header line (WVS releases
    have used both , and ;)."""
    first = _first_line(path)
    counts = {sep: first.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=lambda s: counts[s]) if max(counts.values()) > 0 else ","


def _check_not_binary(path: Path) -> None:
    """A plain .csv that is really an SPSS/Stata/zip/gzip/Excel file: say so instead of failing later
    on a 'missing column'."""
    if path.name.lower().endswith((".gz", ".zip")):
        return
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"{path}: not a CSV file, it looks like {what}")


def _raw_header(path: Path, sep: str) -> list[str]:
    import csv

    return next(csv.reader([_first_line(path)], delimiter=sep), [])


def _select_columns(path: Path, names: Sequence[str], questions: Sequence[Question]) -> dict[str, str]:
    """Map canonical names (country/weight/question ids) to the file's column names; DataError when the
    country column or every question column is missing."""
    upper: dict[str, str] = {}
    for n in names:
        key = str(n).strip().lstrip("\ufeff").strip('"').upper()
        if key in upper:
            raise DataError(f"{path}: column {key} appears twice: which one holds the answers is ambiguous")
        upper[key] = n
    sel: dict[str, str] = {}
    if COUNTRY_ALPHA in upper:
        sel[COUNTRY_ALPHA] = upper[COUNTRY_ALPHA]
    elif COUNTRY_NUMERIC in upper:
        sel[COUNTRY_NUMERIC] = upper[COUNTRY_NUMERIC]
    else:
        raise DataError(
            f"{path}: missing column {COUNTRY_ALPHA} (or numeric {COUNTRY_NUMERIC}): cannot tell the country"
        )
    if WEIGHT in upper:
        sel[WEIGHT] = upper[WEIGHT]
    found = [q.id for q in questions if q.id.upper() in upper]
    if not found:
        ids = [q.id for q in questions]
        raise DataError(
            f"{path}: missing column {ids[0]}: none of the {len(ids)} seed question columns "
            f"({ids[0]} ... {ids[-1]}) is in the file"
        )
    for qid in found:
        sel[qid] = upper[qid.upper()]
    return sel


# Releases carry free-text columns in national encodings; only numeric columns are used, so undecodable
# bytes elsewhere must not fail the read.
_CSV_OPTS = {"encoding_errors": "replace"}


def _read_csv(path: Path, questions: Sequence[Question], progress: Progress | None) -> pd.DataFrame:
    import pandas as pd

    _check_not_binary(path)
    sep = _sniff_sep(path)
    try:
        header = pd.read_csv(path, nrows=0, sep=sep, encoding_errors="replace")
    except Exception as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    _select_columns(path, _raw_header(path, sep), questions)  # duplicates, before pandas renames them
    sel = _select_columns(path, list(header.columns), questions)
    usecols = list(sel.values())
    dtypes = {sel[k]: "string" for k in (COUNTRY_ALPHA,) if k in sel}
    try:
        if progress is None:
            df = pd.read_csv(path, sep=sep, usecols=usecols, dtype=dtypes, low_memory=False, **_CSV_OPTS)
        else:
            compression = "infer"
            name = path.name.lower()
            if name.endswith(".gz"):
                compression = "gzip"
            elif name.endswith(".zip"):
                compression = "zip"
            # rich.progress.open reports bytes read, a good proxy for progress through the file
            size = path.stat().st_size
            task = progress.add_task(f"reading {path.name}", total=size)
            with progress.open(path, "rb", task_id=task) as f:
                df = pd.read_csv(
                    f,
                    sep=sep,
                    usecols=usecols,
                    dtype=dtypes,
                    low_memory=False,
                    compression=compression,
                    **_CSV_OPTS,
                )
            progress.update(task, completed=size)  # a zip is read out of order: mark it done
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    return _normalise(path, df, sel)


def _read_stat(
    path: Path, kind: str, questions: Sequence[Question], progress: Progress | None
) -> pd.DataFrame:
    import pandas as pd
    import pyreadstat

    reader = pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta
    label = "SPSS .sav" if kind == "sav" else "Stata .dta"
    try:
        _, meta = reader(str(path), metadataonly=True)
    except Exception as e:
        raise DataError(f"{path}: not a readable {label} file ({e})") from None
    sel = _select_columns(path, meta.column_names, questions)
    usecols = list(sel.values())
    rows = meta.number_rows
    try:
        if progress is None or not rows:
            df, _ = reader(str(path), usecols=usecols, apply_value_formats=False)
        else:
            task = progress.add_task(f"reading {path.name}", total=rows)
            parts = []
            for chunk, _ in pyreadstat.read_file_in_chunks(
                reader, str(path), chunksize=CHUNK_ROWS, usecols=usecols, apply_value_formats=False
            ):
                parts.append(chunk)
                progress.advance(task, len(chunk))
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=usecols)
    except Exception as e:
        raise DataError(f"{path}: not a readable {label} file ({e})") from None
    return _normalise(path, df, sel)


def _normalise(path: Path, df: pd.DataFrame, sel: dict[str, str]) -> pd.DataFrame:
    """Canonical frame: `country` (ISO3 str), `weight` (float, 1.0 without W_WEIGHT), question columns
    as numeric codes (NaN = empty)."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    out["country"] = _countries(path, df, sel)
    out["weight"] = _weights(path, df, sel) if WEIGHT in sel else 1.0
    for key, name in sel.items():
        if key in (COUNTRY_ALPHA, COUNTRY_NUMERIC, WEIGHT):
            continue
        raw = df[name]
        codes = pd.to_numeric(raw, errors="coerce")
        bad = codes.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
        if bad.any():
            row = _first(bad)
            raise DataError(
                f"{path}: column {name} must hold numeric answer codes; data row {row + 1} has "
                f"{raw.iloc[row]!r}"
            )
        out[key] = codes
    return out


def _first(bad: pd.Series) -> int:
    """The position of the first True in a boolean column."""
    return int(bad.to_numpy().nonzero()[0][0])


def _countries(path: Path, df: pd.DataFrame, sel: dict[str, str]) -> pd.Series:
    """The ISO3 country of every row, from B_COUNTRY_ALPHA or else the ISO numeric B_COUNTRY."""
    import pandas as pd

    if COUNTRY_ALPHA in sel:
        col = df[sel[COUNTRY_ALPHA]].astype("string").str.strip().str.upper()
        bad = col.isna() | (col == "")
        if bad.any():
            raise DataError(f"{path}: column {COUNTRY_ALPHA} is empty in data row {_first(bad) + 1}")
        bad = ~col.str.fullmatch(r"[A-Z]{3}").fillna(False).astype(bool)
        if bad.any():
            row = _first(bad)
            raise DataError(
                f"{path}: column {COUNTRY_ALPHA} must hold ISO 3166 alpha-3 codes (3 letters); data row "
                f"{row + 1} has {df[sel[COUNTRY_ALPHA]].iloc[row]!r}"
            )
        return col.astype(str)
    num = pd.to_numeric(df[sel[COUNTRY_NUMERIC]], errors="coerce")
    mapping: dict[float, str] = {}
    for v in num.dropna().unique():
        a3 = alpha3_from_numeric(int(v)) if float(v).is_integer() else None
        if a3 is None:
            raise DataError(
                f"{path}: column {COUNTRY_NUMERIC} value {v:g} is not a known ISO 3166 numeric code "
                f"of a WVS country; add a {COUNTRY_ALPHA} column"
            )
        mapping[v] = a3
    if num.isna().any():
        raise DataError(
            f"{path}: column {COUNTRY_NUMERIC} is empty or not a number in data row {_first(num.isna()) + 1}"
        )
    return num.map(mapping).astype(str)


def _weights(path: Path, df: pd.DataFrame, sel: dict[str, str]) -> pd.Series:
    """The W_WEIGHT column as floats: non-negative, finite, at most MAX_WEIGHT."""
    import numpy as np
    import pandas as pd

    w = pd.to_numeric(df[sel[WEIGHT]], errors="coerce").astype(float)
    bad = w.isna() | (w < 0) | ~np.isfinite(w) | (w > MAX_WEIGHT)
    if bad.any():
        row = _first(bad)
        raise DataError(
            f"{path}: column {WEIGHT} must hold non-negative finite numbers up to {MAX_WEIGHT:g}; data "
            f"row {row + 1} has "
            f"{plain(df[sel[WEIGHT]].iloc[row])}"
        )
    return w.astype(float)


def read_microdata(
    paths: str | Path | Iterable[str | Path],
    *,
    questions: Sequence[Question] | None = None,
    countries: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Read one or more WVS microdata files (or directories of them) into one frame with columns
    `country` (ISO3), `weight` (W_WEIGHT, or 1.0 when the file has none) and one numeric column per
    seed question found. `countries` keeps only those ISO3 codes (DataError if one has no rows).
    Malformed files raise DataError naming the file and the missing or bad column."""
    import pandas as pd

    questions = list(questions) if questions is not None else load_questions()
    frames = []
    for path in expand_paths(paths):
        kind = _kind(path)
        if kind == "csv":
            frames.append(_read_csv(path, questions, progress))
        else:
            frames.append(_read_stat(path, kind, questions, progress))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if countries:
        wanted = [c.strip().upper() for c in countries if c.strip()]
        have = set(df["country"].unique())
        missing = [c for c in wanted if c not in have]
        if missing:
            raise DataError(
                f"no rows for {', '.join(missing)} in {', '.join(str(p) for p in expand_paths(paths))} "
                f"(countries there: {', '.join(sorted(have))})"
            )
        df = df[df["country"].isin(wanted)].reset_index(drop=True)
    return df
