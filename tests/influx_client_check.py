#!/usr/bin/env python3
"""Writes points to hygrocast through the unmodified InfluxDB 2.x Python client.

Run by tests/influx_client.rs (and by hand):
    influx_client_check.py URL TOKEN START_UNIX_SECONDS
Writes 10 points with the synchronous write API (plain), then 10 more with gzip
enabled, as Point objects and as a line-protocol record, and exits 0 when every write
call returned without an exception. The Rust test then checks the database.
"""
import sys
from datetime import datetime, timezone

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS


def main() -> int:
    url, token, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for gzip, offset in ((False, 0), (True, 10)):
        with InfluxDBClient(url=url, token=token, org="home", enable_gzip=gzip) as client:
            write = client.write_api(write_options=SYNCHRONOUS)
            points = [
                Point("climate")
                .tag("room", "greenhouse")
                .field("humidity", 50.0 + i)
                .field("temperature", 20.0)
                .time(datetime.fromtimestamp(start + offset + i, tz=timezone.utc), WritePrecision.S)
                for i in range(9)
            ]
            write.write(bucket="sensors", record=points, write_precision=WritePrecision.S)
            # A raw line-protocol string, as many scripts send it.
            write.write(
                bucket="sensors",
                record=f"climate,room=greenhouse humidity=49.5 {start + offset + 9}",
                write_precision=WritePrecision.S,
            )
    # A refused point must raise, not pass silently: humidity 140 is out of range.
    with InfluxDBClient(url=url, token=token, org="home") as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        try:
            write.write(bucket="sensors", record=f"climate humidity=140 {start}", write_precision=WritePrecision.S)
        except Exception as e:  # influxdb_client.rest.ApiException
            if getattr(e, "status", None) != 400:
                print(f"expected a 400, got {e!r}", file=sys.stderr)
                return 1
        else:
            print("an out-of-range point was not refused", file=sys.stderr)
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
