#!/usr/bin/env python3
"""Run a plan of SQL statements on current ClickHouse, embedded by chDB.

riskflow's cross-version check (pipeline/chsink, TestSQLOnBothClickHouses) writes the plan: every
statement riskflow ships or sends (migrations, inserts with their rows, backfill, the archiver's
and the backtest's reads, `rules report`, analyst queries, dashboard panels), in order. This
script only executes it in a fresh chDB session and records what each statement returned; the Go
test runs the same plan on the 18.16 server and compares. It knows nothing about riskflow.

    chdb_runner.py --version            print the ClickHouse version chDB embeds
    chdb_runner.py PLAN.json OUT.json   run the plan, write the results

PLAN.json: {"steps": [{"name": "...", "sql": "...", "data": "...", "result": true}, ...]}
  sql     one statement, without a trailing semicolon
  data    optional rows for an INSERT ... FORMAT statement, sent after it
  result  true: return the output as TabSeparated; false: run it for its effect
OUT.json: {"version": "...", "seconds": 1.2, "steps": [{"name", "ok", "error", "output"}, ...]}
Every step runs, whatever the earlier ones did; the exit code is 0 when the plan could be read
and run (a failing statement is a result, not a crash).
"""

import json
import os
import shutil
import sys
import tempfile
import time

# Same clock zone as the CI server (its config says UTC), before ClickHouse reads it.
os.environ["TZ"] = "UTC"

import chdb  # noqa: E402
from chdb import session as chs  # noqa: E402


def version(sess):
    return str(sess.query("SELECT version()", "TabSeparated")).strip()


def run(plan_path, out_path):
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    workdir = tempfile.mkdtemp(prefix="riskflow-chdb-")
    t0 = time.monotonic()
    results = []
    try:
        sess = chs.Session(workdir)
        ver = version(sess)
        for step in plan["steps"]:
            sql = step["sql"]
            if step.get("data"):
                sql = sql + "\n" + step["data"]
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
    out = {"version": ver, "chdb": chdb.__version__, "seconds": round(time.monotonic() - t0, 3), "steps": results}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


def main(argv):
    if argv[1:] == ["--version"]:
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
