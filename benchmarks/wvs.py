"""WVS seed layer benchmark: reading and aggregating a full-size synthetic WVS wave-7 release
(CSV and SPSS), seed-set latency, and the `culturellm seeds` command's wall time.

    python benchmarks/wvs.py [--rows 97220] [--countries 64] [--extra-columns 550]

The synthetic release resamples the shared microdata's answers (../shared/data/wvs/wave7) over
`--countries` numeric country codes and pads each row with filler columns, so the file has the
width of the official release (~600 variables) and the reader must skip most of it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "wvs" / "wave7"


def synthetic_release(rows: int, n_countries: int, extra: int, seed: int = 0) -> pd.DataFrame:
    from culturellm.wvs.countries import COUNTRIES

    rng = np.random.default_rng(seed)
    real = pd.concat([pd.read_csv(p) for p in sorted(SHARED.glob("*.csv"))], ignore_index=True)
    qcols = [c for c in real.columns if c.startswith("Q")]
    sample = real[qcols].sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    codes = [c.numeric for c in list(COUNTRIES.values())[:n_countries]]
    alpha = {c.numeric: c.alpha3 for c in COUNTRIES.values()}
    country = rng.choice(codes, size=rows)
    df = pd.DataFrame({"B_COUNTRY": country, "B_COUNTRY_ALPHA": [alpha[c] for c in country]})
    df["W_WEIGHT"] = rng.uniform(0.3, 3.0, size=rows).round(6)
    filler = pd.DataFrame(
        rng.integers(-5, 11, size=(rows, extra), dtype=np.int8), columns=[f"V{i:03d}" for i in range(extra)]
    )
    return pd.concat([df, sample, filler], axis=1)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=97_220, help="respondents (WVS-7 v6 has ~97k)")
    ap.add_argument("--countries", type=int, default=64)
    ap.add_argument("--extra-columns", type=int, default=550, help="filler variables per row")
    args = ap.parse_args()

    from culturellm.wvs import aggregate, read_microdata

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CULTURELLM_HOME"] = tmp
        df, t_gen = timed(lambda: synthetic_release(args.rows, args.countries, args.extra_columns))
        csv = Path(tmp) / "release.csv"
        sav = Path(tmp) / "release.sav"
        _, t_wcsv = timed(lambda: df.to_csv(csv, index=False))
        _, t_wsav = timed(lambda: pyreadstat.write_sav(df, sav))
        print(
            f"synthetic release: {len(df):,} rows x {df.shape[1]} columns, {args.countries} countries "
            f"(generated in {t_gen:.1f} s; CSV {csv.stat().st_size / 1e6:.0f} MB in {t_wcsv:.1f} s, "
            f"SAV {sav.stat().st_size / 1e6:.0f} MB in {t_wsav:.1f} s)"
        )
        for path in (csv, sav):
            micro, t_read = timed(lambda p=path: read_microdata(p))
            answers, t_agg = timed(lambda m=micro: aggregate(m))
            print(
                f"{path.suffix[1:]:>4}: read {t_read:6.2f} s, aggregate {t_agg:5.2f} s "
                f"-> {len(answers):,} country x question aggregates"
            )
        cmd = [sys.executable, "-m", "culturellm.cli", "wvs", "import", str(csv), "--no-progress"]
        r, t_imp = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, env=os.environ))
        assert r.returncode == 0, r.stderr
        print(f"`culturellm wvs import release.csv` (whole command): {t_imp:.2f} s")

        code = (
            "import time; t=time.perf_counter(); from culturellm.seeds import seed_set; "
            "s=seed_set('arabic'); t1=time.perf_counter(); seed_set('arabic'); t2=time.perf_counter(); "
            "print(f'{t1-t:.4f} {t2-t1:.6f} {len(s)}')"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
        cold, warm, n = out.stdout.split()
        print(
            f"seed_set('arabic') with {args.countries} imported countries: "
            f"first call {float(cold) * 1e3:.0f} ms (imports + reading aggregates), "
            f"memoised {float(warm) * 1e6:.0f} us, {n} seeds"
        )
        del os.environ["CULTURELLM_HOME"]

    for argv in (["--help"], ["seeds", "--culture", "arabic", "--json"], ["seeds", "--culture", "arabic"]):
        walls = []
        for _ in range(3):
            _, t = timed(
                lambda a=argv: subprocess.run(
                    [sys.executable, "-m", "culturellm.cli", *a], capture_output=True, check=True
                )
            )
            walls.append(t)
        print(f"`culturellm {' '.join(argv)}`: best of 3 {min(walls):.2f} s")
    code = "import time; t=time.perf_counter(); import culturellm.survey_cli; print(time.perf_counter()-t)"
    imp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    print(f"import culturellm.survey_cli alone: {float(imp) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
