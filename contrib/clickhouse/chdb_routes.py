#!/usr/bin/env python3
"""Runs the ClickHouse pipeline of this directory in-process with chDB (ClickHouse's engine
as a Python package: pip install chdb), for one machine's logs or a test:

    chdb_routes.py [--since TS] [--until TS] [--db DIR] FILE... > paths.jsonl

schema.sql creates the table (in DIR, a fresh temporary one by default), insert.sql loads
every FILE (lopa's JSON lines; other record types are left out by the query), routes.sql sums
the path records of [since, until) per flow and route and writes them as path records on
stdout, for lcorrelate. The SQL files run as they are, as clickhouse-client would run them.
"""

import argparse
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
# Lines per INSERT: a fleet's log is larger than memory wants in one statement.
BATCH = 20_000


def sql(name):
    return (HERE / name).read_text()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--since", default="1970-01-01 00:00:00", help="first instant (UTC) summed")
    ap.add_argument("--until", default="2262-04-11 00:00:00", help="first instant (UTC) not summed")
    ap.add_argument("--db", help="database directory (kept); default: a temporary one")
    ap.add_argument("files", nargs="+", help="JSON lines files")
    args = ap.parse_args()
    try:
        from chdb import session
    except ImportError:
        sys.exit("chdb_routes.py: the chdb package is missing: pip install chdb")

    with tempfile.TemporaryDirectory(prefix="lopa-chdb-") as tmp:
        db = session.Session(args.db or tmp)
        try:
            db.query(sql("schema.sql"))
            insert = sql("insert.sql")
            for name in args.files:
                with open(name, encoding="utf-8") as f:
                    batch = []
                    for line in f:
                        if line.strip():
                            batch.append(line)
                        if len(batch) == BATCH:
                            db.query(insert + "\n" + "".join(batch))
                            batch = []
                    if batch:
                        db.query(insert + "\n" + "".join(batch))
            out = db.query(
                sql("routes.sql"), "TSVRaw", params={"since": args.since, "until": args.until}
            )
            sys.stdout.write(out.bytes().decode("utf-8"))
        except Exception as e:  # chdb raises its own error type with ClickHouse's message
            sys.exit(f"chdb_routes.py: {str(e).strip().splitlines()[0]}")
        finally:
            db.close()


if __name__ == "__main__":
    main()
