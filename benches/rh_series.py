#!/usr/bin/env python3
"""Real hourly relative-humidity years from pvlib 0.16.1's shipped data, as `ts,value` CSVs.

    rh_series.py OUT_DIR [DIST_DIR]

DIST_DIR (default: OUT_DIR's parent) holds pvlib-0.16.1-py3-none-any.whl and
pvlib-0.16.1.tar.gz; both are read in place. The wheel only carries pvlib/data/
(Greensboro, Sand Point, Miami); the EPW, PVGIS, NSRDB and SolarAnywhere files are
pvlib's test fixtures, which only the sdist of the same release ships (tests/data/).

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
import pathlib
import sys
import tarfile
import zipfile

MISSING = {999.0, -999.0, -9900.0, 9999.0, -9999.0}


def archive_reader(dist):
    """Map a data file's basename to its bytes, from the wheel where it has the file."""
    files = {}
    sdist = tarfile.open(next(dist.glob("pvlib-0.16.1.tar.gz")))
    for m in sdist.getmembers():
        if m.isfile() and "/data/" in m.name:
            files.setdefault(m.name.rsplit("/", 1)[1], lambda m=m: sdist.extractfile(m).read())
    wheel = zipfile.ZipFile(next(dist.glob("pvlib-0.16.1-*.whl")))
    for n in wheel.namelist():
        if n.startswith("pvlib/data/"):
            files[n.rsplit("/", 1)[1]] = lambda n=n: wheel.read(n)  # same bytes as the sdist's copy
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


def main():
    out = pathlib.Path(sys.argv[1])
    read = archive_reader(pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else out.parent)
    out.mkdir(parents=True, exist_ok=True)
    for name, fname, reader in SERIES:
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
