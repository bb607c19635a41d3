#!/usr/bin/env python3
"""Run a plan of SQL statements on current ClickHouse, embedded by chDB.

riskflow's cross-version check (pipeline/chsink, TestSQLOnBothClickHouses) writes the plan: every
statement riskflow ships or sends (migrations, inserts with their rows, backfill, the archiver's
and the backtest's reads, `rules report`, analyst queries, dashboard panels), in order. This
script only executes it in a fresh chDB session and records what each statement returned; the Go
test runs the same plan on the 18.16 server and compares. It knows nothing about riskflow.

    chdb_runner.py --version            print the ClickHouse version chDB embeds
    chdb_runner.py PLAN.json OUT.json   run the plan, write the results

PLAN.json: {"timezone": "UTC", "steps": [{"name": "...", "sql": "...", "data": "...", "result": true}, ...]}
  timezone   the server's time zone (the session's default for now(), toStartOfHour(x) and a
             DateTime without one); default UTC
  sql     one statement, without a trailing semicolon
  data       optional rows for an INSERT ... FORMAT statement, sent after it
  data_file  optional file whose content is sent after the statement instead (large inserts)
  result  true: return the output as TabSeparated; false: run it for its effect
OUT.json: {"version": "...", "timezone": "...", "seconds": 1.2, "steps": [{"name", "ok", "error", "output"}, ...]}
Every step runs, whatever the earlier ones did; the exit code is 0 when the plan could be read
and run (a failing statement is a result, not a crash).
"""

import json
import os
import shutil
import sys
import tempfile
import time


def start_chdb(tz):
    """Import chDB with the server time zone tz: ClickHouse reads TZ once, when it loads."""
    os.environ["TZ"] = tz
    global chdb, chs
    import chdb
    from chdb import session as chs


def version(sess):
    return str(sess.query("SELECT version()", "TabSeparated")).strip()


def run(plan_path, out_path):
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    start_chdb(plan.get("timezone") or "UTC")
    workdir = tempfile.mkdtemp(prefix="riskflow-chdb-")
    t0 = time.monotonic()
    results = []
    try:
        sess = chs.Session(workdir)
        ver = version(sess)
        zone = str(sess.query("SELECT timezone()", "TabSeparated")).strip()
        for step in plan["steps"]:
            sql = step["sql"]
            if step.get("data"):
                sql = sql + "\n" + step["data"]
            elif step.get("data_file"):
                with open(step["data_file"], encoding="utf-8") as f:
                    sql = sql + "\n" + f.read()
            res = {"name": step["name"], "ok": True, "error": "", "output": ""}
            try:
                out = sess.query(sql, "TabSeparated")
                if step.get("result"):
                    res["output"] = out.bytes().decode("utf-8", "replace") if hasattr(out, "bytes") else str(out)
            except Exception as e:  # chDB raises ChdbError (and RuntimeError on older releases)
                res["ok"] = False
                res["error"] = str(e).strip()
            results.append(res)
        sess.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = {"version": ver, "timezone": zone, "chdb": chdb.__version__, "seconds": round(time.monotonic() - t0, 3), "steps": results}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


def main(argv):
    if argv[1:] == ["--version"]:
        start_chdb("UTC")
        workdir = tempfile.mkdtemp(prefix="riskflow-chdb-")
        try:
            sess = chs.Session(workdir)
            print(version(sess))
            sess.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    run(argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
