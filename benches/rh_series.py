#!/usr/bin/env python3
"""Real hourly relative-humidity years from files shipped on PyPI, as `ts,value` CSVs.

    rh_series.py OUT_DIR [DIST_DIR] [SET]

SET `outdoor` (the default): the seven years of pvlib 0.16.1's data. DIST_DIR (default:
OUT_DIR's parent) holds pvlib-0.16.1-py3-none-any.whl and pvlib-0.16.1.tar.gz; both are
read in place. The wheel only carries pvlib/data/ (Greensboro, Sand Point, Miami); the EPW,
PVGIS, NSRDB and SolarAnywhere files are pvlib's test fixtures, which only the sdist of the
same release ships (tests/data/).

SET `heldout`: five more stations from the test fixtures of bifacial_radiance 0.5.4's sdist
(bifacial_radiance-0.5.4.tar.gz in DIST_DIR), first run when the engine was done: a check
on series no engine setting was ever chosen on, to be kept that way. Boulder (TMY2) and
McGuire AFB (TMY3) as EPW files (station measurements), 15 months of Solargis RH at
Almeria, and two NSRDB files that carry dew point and temperature in whole degrees instead
of RH (a Phoenix PSM3 TMY, a Boulder year), converted with the Magnus formula as weather
stations do. Solargis and NSRDB take their weather from reanalysis models, so those three
are smoother than a sensor; so are the PVGIS and NSRDB years of the outdoor set.

Typical years splice months from different years, and we want one series per file with
no artificial gaps, so every file is read as one continuous year in file order and
re-stamped hourly from 2025-01-01 (01:00 if the file's first row is hour 1, else 00:00),
ignoring the file's own dates. Missing markers drop the row (its hour stays empty);
everything else is clamped into 0..100 and keeps the file's digits. Rows end in CRLF so
that Greensboro is byte-identical to shared/data/greensboro_723170.csv.
Stdlib only, so it runs on any Python 3.11.
"""
import csv
import datetime as dt
import io
import json
import math
import pathlib
import sys
import tarfile
import zipfile

MISSING = {999.0, -999.0, -9900.0, 9999.0, -9999.0}


def archive_reader(dist, sdist_name, folder, wheel_glob=None):
    """Map a data file's basename to its text: the files under `folder` in the sdist, or in
    the wheel where it has the file."""
    files = {}
    sdist = tarfile.open(next(dist.glob(sdist_name)))
    for m in sdist.getmembers():
        if m.isfile() and folder in m.name:
            files.setdefault(m.name.rsplit("/", 1)[1], lambda m=m: sdist.extractfile(m).read())
    if wheel_glob:
        wheel = zipfile.ZipFile(next(dist.glob(wheel_glob)))
        for n in wheel.namelist():
            if folder in n:
                files[n.rsplit("/", 1)[1]] = lambda n=n: wheel.read(n)  # the sdist's bytes too
    return lambda name: files[name]().decode("latin-1")


def tmy3(text, col=37):
    # RHum is the 38th TMY3 field; by position, because SolarAnywhere's header is cut short.
    rows = list(csv.reader(io.StringIO(text)))[2:]
    return int(rows[0][1][:2]), [r[col] for r in rows]


def tmy2(text):
    # Fixed width: hour in columns 8-9, RH in 80-82 (1-based, TMY2 user manual).
    lines = text.splitlines()[1:]
    return int(lines[0][7:9]), [l[79:82].strip() for l in lines]


def epw(text):
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0][:1].isdigit()]
    return int(rows[0][3]), [r[8] for r in rows]


def pvgis_json(text):
    rows = json.loads(text)["outputs"]["tmy_hourly"]
    return int(rows[0]["time(UTC)"][-4:-2]), [repr(r["RH"]) for r in rows]


def nsrdb(text):
    # Raw NSRDB download: two metadata lines, then data; 30-min rows are averaged per clock hour.
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 2)[2])))
    hours = {}
    for r in rows:
        hours.setdefault((r["Year"], r["Month"], r["Day"], r["Hour"]), []).append(float(r["Relative Humidity"]))
    return int(rows[0]["Hour"]), [str(round(sum(v) / len(v), 2)) for v in hours.values()]


def magnus_rh(temp, dew):
    """RH (%) from air temperature and dew point (°C), Magnus formula (Alduchov and Eskridge
    1996 coefficients), rounded to 0.1 as the sources' own RH columns are."""
    a, b = 17.625, 243.04
    return str(round(100 * math.exp(a * dew / (b + dew) - a * temp / (b + temp)), 1))


def psm3_dew(text):
    # NSRDB PSM3 download: two metadata lines, then data with Dew Point and Temperature.
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 2)[2])))
    return int(rows[0]["Hour"]), [magnus_rh(float(r["Temperature"]), float(r["Dew Point"])) for r in rows]


def metdata_dew(text):
    # pvlib-style frame: temp_air and Dew Point columns.
    rows = list(csv.DictReader(io.StringIO(text)))
    return int(rows[0]["Hour"]), [magnus_rh(float(r["temp_air"]), float(r["Dew Point"])) for r in rows]


def solargis(text):
    # '#' comment lines, then `Date;Time;...;RH;...` with times at the half hour.
    rows = list(csv.reader((l for l in text.splitlines() if l and not l.startswith("#")), delimiter=";"))
    col = rows[0].index("RH")
    return int(rows[1][1][:2]), [r[col] for r in rows[1:]]


SERIES = [  # name, file, reader
    ("greensboro_723170", "723170TYA.CSV", tmy3),
    ("sandpoint_703165", "703165TY.csv", tmy3),
    ("miami_12839", "12839.tm2", tmy2),
    ("amsterdam_062400", "NLD_Amsterdam062400_IWEC.epw", epw),
    ("pvgis_45n_8e", "tmy_45.000_8.000_2005_2023.json", pvgis_json),
    ("nsrdb_psm4_2023", "test_read_psm4.csv", nsrdb),
    ("burlington_2021", "Burlington, United States SolarAnywhere Time Series 2021 "
     "Lat_44_465 Lon_-73_205 TMY3 format.csv", tmy3),
]


HELDOUT = [
    ("boulder_tmy2", "USA_CO_Boulder.724699_TMY2.epw", epw),
    ("mcguire_afb_tmy3", "USA_NJ_McGuire.AFB.724096_TMY3.epw", epw),
    ("almeria_solargis", "SOLARGIS_Almeria_Spain_20210331.csv", solargis),
    ("phoenix_psm3_dewpoint", "phoenix_az_psmv3_60_tmy.csv", psm3_dew),
    ("boulder_2010_dewpoint", "nsrdb_boulder_metdata.csv", metdata_dew),
]


def main():
    out = pathlib.Path(sys.argv[1])
    dist = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else out.parent
    which = sys.argv[3] if len(sys.argv) > 3 else "outdoor"
    if which not in ("outdoor", "heldout"):
        sys.exit(f"SET must be outdoor or heldout, got {which!r}")
    if which == "heldout":
        read = archive_reader(dist, "bifacial_radiance-0.5.4.tar.gz", "/tests/")
        series = HELDOUT
    else:
        read = archive_reader(dist, "pvlib-0.16.1.tar.gz", "/data/", "pvlib-0.16.1-*.whl")
        series = SERIES
    out.mkdir(parents=True, exist_ok=True)
    for name, fname, reader in series:
        first_hour, values = reader(read(fname))
        t0 = dt.datetime(2025, 1, 1, 1 if first_hour == 1 else 0)
        kept = 0
        with open(out / f"{name}.csv", "w", newline="") as f:
            w = csv.writer(f)  # CRLF rows, as in shared/data/greensboro_723170.csv
            w.writerow(["ts", "value"])
            for i, v in enumerate(values):
                try:
                    x = float(v)
                except ValueError:
                    continue  # blank field: missing
                if x in MISSING:
                    continue
                # :g keeps the file's digits (94.38, 77) but drops TMY2's zero padding (073).
                w.writerow([(t0 + dt.timedelta(hours=i)).isoformat() + "Z", f"{min(max(x, 0.0), 100.0):g}"])
                kept += 1
        print(f"{name}: {kept} of {len(values)} rows from {fname}", file=sys.stderr)


if __name__ == "__main__":
    main()
