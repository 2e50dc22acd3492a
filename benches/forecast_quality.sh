#!/usr/bin/env bash
# Forecast quality on 7 real hourly relative-humidity years (pvlib 0.16.1's data files),
# so a model change is judged on more than Greensboro alone. Prints figures; asserts nothing.
#
#   benches/forecast_quality.sh                  blend only, 2 series at a time
#   MODELS=blend,ridge JOBS=1 EVAL_ARGS="--window-days 30" benches/forecast_quality.sh
#   HYGROCAST=target/debug/hygrocast ...         another build (default: the release binary)
#   PEERS=1 benches/forecast_quality.sh          also the established tools (benches/peers.py:
#                                                scikit-learn ridge direct and recursive; add
#                                                PEERS_MODELS=...,AutoTheta for statsforecast)
#   TAIL_DAYS=95 PEERS=1 benches/...             only the last 95 days of each year: young
#                                                sensors (the first of the 60 days scored has
#                                                35 days of history before it)
#   SERIES=indoor PEERS=1 benches/...            instead of the seven outdoor years, eight
#                                                indoor rooms of one house over 137 days
#                                                (benches/data/README.md)
#   SERIES=indoor10 PEERS=1 benches/...          the same rooms' last 104 days on 10-minute
#                                                steps (--step-secs 600, 30 days scored,
#                                                120 steps = 20 h ahead): a sensor served on
#                                                a finer grid than hourly
#   SERIES=heldout PEERS=1 benches/...           five more stations (dry Boulder and Phoenix,
#                                                coastal New Jersey, Almeria), first run once
#                                                the engine was done: a check on series no
#                                                setting was chosen on. Confirm with it; do
#                                                not tune on it, or it stops being held out
#
# Peer scores do not depend on hygrocast, so they are cached per series and peer in
# target/rh-data/peers.json (peers-last<N>d.json with TAIL_DAYS; delete it to re-measure); the first run takes ~5 min for the two
# ridges, ~45 min more for AutoTheta.
#
# Each evaluate is a rolling-origin backtest (56 origins, horizons 1-120 h): about 30-60 s
# per series and model in release, each run with --jobs 1 (one thread), and JOBS of them
# side by side, by default the 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS=${MODELS:-blend}
JOBS=${JOBS:-2}
BIN=${HYGROCAST:-target/release/hygrocast}
read -ra EXTRA <<<"${EVAL_ARGS:-}"
DATA=target/rh-data
VENV=target/rh-venv
TAIL_DAYS=${TAIL_DAYS:-}
[[ -z "$TAIL_DAYS" || "$TAIL_DAYS" =~ ^[1-9][0-9]*$ ]] ||
    { echo "TAIL_DAYS must be a whole number of days, got '$TAIL_DAYS'" >&2; exit 2; }
SERIES=${SERIES:-outdoor}
[[ "$SERIES" =~ ^(outdoor|indoor|indoor10|heldout)$ ]] ||
    { echo "SERIES must be outdoor, indoor, indoor10 or heldout, got '$SERIES'" >&2; exit 2; }
ROOMS=benches/data/uci_appliances_indoor_rh.csv
PER_DAY=24
if [ "$SERIES" = indoor10 ]; then
    ROOMS=benches/data/uci_appliances_indoor_rh_10min.csv
    EXTRA=(--step-secs 600 --window-days 30 "${EXTRA[@]}")
    PER_DAY=144
    export PEERS_PERIOD=144 PEERS_WINDOW_DAYS=30
fi
PEERS_JSON=$DATA/peers${TAIL_DAYS:+-last${TAIL_DAYS}d}.json
[ "$SERIES" = outdoor ] || PEERS_JSON=${PEERS_JSON%.json}-$SERIES.json

# A venv because Debian's system pip refuses to touch the system Python (PEP 668).
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
mkdir -p "$DATA"
# The wheel has pvlib/data/ only; the EPW, PVGIS, NSRDB and SolarAnywhere files are test
# fixtures that ship in the sdist alone. Both are pinned, so a cached copy is final.
[ -f "$DATA/pvlib-0.16.1-py3-none-any.whl" ] ||
    "$VENV/bin/pip" download -q pvlib==0.16.1 --no-deps --only-binary :all: -d "$DATA"
[ -f "$DATA/pvlib-0.16.1.tar.gz" ] ||
    "$VENV/bin/pip" download -q pvlib==0.16.1 --no-deps --no-binary :all: -d "$DATA"
[ "$SERIES" != heldout ] || [ -f "$DATA/bifacial_radiance-0.5.4.tar.gz" ] ||
    "$VENV/bin/pip" download -q bifacial_radiance==0.5.4 --no-deps --no-binary :all: -d "$DATA"

# Regenerated every run (2 s) so the CSVs can never lag behind rh_series.py.
rm -rf "$DATA/csv" "$DATA/json"
mkdir -p "$DATA/json" "$DATA/csv"
if [ "$SERIES" = heldout ]; then
    "$VENV/bin/python" benches/rh_series.py "$DATA/csv" "$DATA" heldout 2>/dev/null
elif [ "$SERIES" != outdoor ]; then
    # One committed file with a column per room: one ts,value CSV per room.
    "$VENV/bin/python" - "$ROOMS" "$DATA/csv" <<'EOF'
import csv, pathlib, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for room in [c for c in rows[0] if c != "ts"]:
    with open(pathlib.Path(sys.argv[2]) / f"indoor_{room}.csv", "w") as f:
        f.write("ts,value\n" + "".join(f"{r['ts']},{r[room]}\n" for r in rows))
EOF
else
    "$VENV/bin/python" benches/rh_series.py "$DATA/csv" "$DATA" 2>/dev/null
fi
ref=../shared/data/greensboro_723170.csv  # the project's reference copy, when shared/ is beside us
[ "$SERIES" != outdoor ] || [ ! -f "$ref" ] || cmp -s "$ref" "$DATA/csv/greensboro_723170.csv" ||
    echo "warning: $DATA/csv/greensboro_723170.csv differs from $ref" >&2
if [ -n "$TAIL_DAYS" ]; then
    # Keep the header and the last TAIL_DAYS days of rows.
    for f in "$DATA"/csv/*.csv; do
        { head -n 1 "$f"; tail -n +2 "$f" | tail -n $((TAIL_DAYS * PER_DAY)); } >"$f.tail"
        mv "$f.tail" "$f"
    done
fi

for f in "$DATA"/csv/*.csv; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    name=$(basename "$f" .csv)
    # Written under a temporary name so a failed run leaves no half JSON behind.
    { "$BIN" evaluate --csv "$f" --json --jobs 1 --models "$MODELS" "${EXTRA[@]}" \
        >"$DATA/json/$name.tmp" 2>/dev/null && mv "$DATA/json/$name.tmp" "$DATA/json/$name.json"; } ||
        echo "evaluate failed on $name" >&2 &
done
wait

PEER_LIST=""
if [ "${PEERS:-0}" = 1 ]; then
    PEER_LIST=${PEERS_MODELS:-ridge_direct,ridge_recursive}
    pkgs=(numpy pandas scikit-learn)
    [[ "$PEER_LIST" != *Auto* && "$PEER_LIST" != *MSTL* ]] || pkgs+=(statsforecast)
    "$VENV/bin/pip" install -q "${pkgs[@]}"
    PEERS_MODELS=$PEER_LIST "$VENV/bin/python" benches/peers.py "$PEERS_JSON" "$DATA"/csv/*.csv
fi

"$VENV/bin/python" - "$DATA" "$MODELS" "$PEER_LIST" "$PEERS_JSON" <<'EOF'
import json, pathlib, sys
data, models = pathlib.Path(sys.argv[1]), sys.argv[2].split(",")
cols = [(m, k) for m in models for k in ("mase_1_24", "mase_1_120")]
print(f"{'series':<20} {'rows':>5}" + "".join(f" {m + ' ' + k[5:].replace('_', '-'):>16}" for m, k in cols) + "  chosen")
sums = {c: [] for c in cols}
for csv in sorted((data / "csv").glob("*.csv")):
    out = data / "json" / (csv.stem + ".json")
    if not out.exists():
        print(f"{csv.stem:<20} evaluate failed")
        continue
    r = json.loads(out.read_text())
    by = {m["model"]: m for m in r["models"]}
    cells = []
    for m, k in cols:
        v = by.get(m, {}).get(k)  # a model the binary does not know has no row
        if v is not None:
            sums[(m, k)].append(v)
        cells.append(f"{v:16.3f}" if v is not None else f"{'-':>16}")
    print(f"{csv.stem:<20} {r['series']['rows']:>5} " + " ".join(cells) + f"  {r['chosen']}")
print(f"{'mean':<20} {'':>5} " + " ".join(
    f"{sum(v) / len(v):16.3f}" if v else f"{'-':>16}" for v in sums.values())
    + f"  (over {max(map(len, sums.values()), default=0)} series)")

peers = [p for p in sys.argv[3].split(",") if p]
if peers:
    measured = json.loads(pathlib.Path(sys.argv[4]).read_text())
    ours = models[0]
    print(f"\n{ours} against the established tools (MASE 1-24 / 1-120; ratio < 1: {ours} better)")
    print(f"{'series':<20}" + "".join(f" {p:>22}" for p in peers) + f" {'best peer':>22} {'ratio':>13}")
    ratios = []
    for csv in sorted((data / "csv").glob("*.csv")):
        out, got = data / "json" / (csv.stem + ".json"), measured.get(csv.stem, {})
        if not out.exists() or not all(p in got for p in peers):
            continue
        mine = next(m for m in json.loads(out.read_text())["models"] if m["model"] == ours)
        best = [min(got[p][k] for p in peers) for k in ("mase_1_24", "mase_1_120")]
        r = [mine["mase_1_24"] / best[0], mine["mase_1_120"] / best[1]]
        ratios.append(r)
        cells = "".join(f" {got[p]['mase_1_24']:>10.3f} / {got[p]['mase_1_120']:<9.3f}" for p in peers)
        print(f"{csv.stem:<20}{cells} {best[0]:>10.3f} / {best[1]:<9.3f} {r[0]:>5.3f} / {r[1]:.3f}")
    if ratios:
        mean = [sum(r[i] for r in ratios) / len(ratios) for i in (0, 1)]
        print(f"{'mean ratio':<20}" + " " * (23 * len(peers) + 23) + f" {mean[0]:>5.3f} / {mean[1]:.3f}")
EOF
