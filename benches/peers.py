"""Established forecasting tools on the same series and protocol as `hygrocast evaluate`.

The issue's reference table for Greensboro (../shared/data/README.md) was measured with these
models; this script measures them on every CSV given, so hygrocast's blend can be compared
with the peers on series other than the one its targets are stated for.

    PEERS_MODELS=ridge_direct,AutoTheta python benches/peers.py OUT.json CSV...

(`PEERS=1 benches/forecast_quality.sh` runs it and sets its table beside hygrocast's.) The
default is every peer below; statsforecast is only imported for its models.

Protocol, as in the forecasting issue: N values in file order; first origin o0 = N - 1440;
origins o0, o0+24, ... while o + 120 <= N; fit on y[0:o], forecast y[o..o+119]; MASE scale =
mean |y[t] - y[t-24]| over 24 <= t < o0, the same for every origin. With PEERS_PERIOD=P and
PEERS_WINDOW_DAYS=D (a finer grid than hourly) read P for 24 and D * P for 1440.
"""

import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

H = 120
# Steps a day and days scored: hourly and 60 days unless the environment says otherwise
# (SERIES=indoor10 sets 144 and 30 for 10-minute steps). On a finer grid the lags 1-24 are
# the last 24 steps and the day joins the 2- and 7-day lags: hourly lags alone lose to the
# last steps' (on the 10-minute rooms, MASE 0.87 against 0.73 at steps 1-24 on room 1).
P = int(os.environ.get("PEERS_PERIOD", "24"))
WINDOW = int(os.environ.get("PEERS_WINDOW_DAYS", "60")) * P
LAGS = list(range(1, 25)) + ([P] if P > 24 else []) + [2 * P, 7 * P]
FIRST = max(LAGS) - 1  # first index t with every lag of row t observed (t - 167 >= 0)


def origins(n):
    o = n - WINDOW
    out = []
    while o + H <= n:
        out.append(o)
        o += P
    return out


def hour_terms(idx):
    a = 2 * np.pi * (np.asarray(idx) % P) / P
    return np.column_stack([np.sin(a), np.cos(a)])


def lag_matrix(y, ts):
    """Row for last-observed index t: y[t+1-k] for each lag k, plus the hour of t+1."""
    ts = np.asarray(ts)
    cols = [y[ts + 1 - k] for k in LAGS]
    return np.column_stack(cols + [hour_terms(ts + 1)])


def ridge_direct(y, o):
    from sklearn.linear_model import Ridge

    out = np.empty(H)
    x_origin = lag_matrix(y, [o - 1])
    for h in range(1, H + 1):
        ts = np.arange(FIRST, o - h)  # target t + h <= o - 1
        m = Ridge().fit(lag_matrix(y, ts), y[ts + h])
        out[h - 1] = m.predict(x_origin)[0]
    return out


def recursive(make_model):
    def forecast(y, o):
        ts = np.arange(FIRST, o - 1)
        m = make_model().fit(lag_matrix(y, ts), y[ts + 1])
        buf = list(y[:o])
        for _ in range(H):
            t = len(buf) - 1
            row = [buf[t + 1 - k] for k in LAGS] + list(hour_terms([t + 1])[0])
            buf.append(float(m.predict(np.asarray([row]))[0]))
        return np.asarray(buf[o:])

    return forecast


def stats_model(name):
    def forecast(y, o):
        from statsforecast.models import MSTL, AutoETS, AutoTheta

        model = {
            "AutoETS": lambda: AutoETS(season_length=P),
            "AutoTheta": lambda: AutoTheta(season_length=P),
            "MSTL": lambda: MSTL(season_length=[P, 7 * P]),
        }[name]()
        return np.asarray(model.forecast(y=y[:o].astype(float), h=H)["mean"])

    return forecast


def peers():
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    return {
        "ridge_direct": ridge_direct,
        "ridge_recursive": recursive(Ridge),
        "histgbr_recursive": recursive(HistGradientBoostingRegressor),
        "AutoTheta": stats_model("AutoTheta"),
        "AutoETS": stats_model("AutoETS"),
        "MSTL": stats_model("MSTL"),
    }


def score(y, forecast):
    n = len(y)
    os_ = origins(n)
    o0 = os_[0]
    scale = np.mean(np.abs(y[P:o0] - y[: o0 - P]))
    errs, fit = [], []
    for o in os_:
        t0 = time.perf_counter()
        f = np.clip(forecast(y, o), 0.0, 100.0)
        fit.append(time.perf_counter() - t0)
        errs.append(np.abs(f - y[o : o + H]))
    e = np.asarray(errs)
    return {
        "mase_1_24": float(e[:, :24].mean() / scale),
        "mase_1_120": float(e.mean() / scale),
        "seconds_per_origin": float(np.median(fit)),
    }


def main():
    warnings.filterwarnings("ignore")
    out, csvs = sys.argv[1], sys.argv[2:]
    only = [m for m in os.environ.get("PEERS_MODELS", "").split(",") if m]
    models = {k: v for k, v in peers().items() if not only or k in only}
    # Peer scores do not depend on hygrocast: keep what OUT already holds, measure the rest.
    result = json.loads(open(out).read()) if os.path.exists(out) else {}
    for path in csvs:
        y = pd.read_csv(path)["value"].to_numpy(dtype=float)
        if np.isnan(y).any():
            print(f"{path}: has gaps; the peers need a complete series", file=sys.stderr)
            continue
        name = path.rsplit("/", 1)[-1].removesuffix(".csv")
        done = result.setdefault(name, {})
        for m, f in models.items():
            if m in done:
                continue
            done[m] = r = score(y, f)
            print(f"{name:<20} {m:<18} {r['mase_1_24']:.3f} {r['mase_1_120']:.3f}"
                  f" {r['seconds_per_origin']:.2f}s", file=sys.stderr, flush=True)
            with open(out, "w") as fh:  # after every model: a stopped run keeps its work
                json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
