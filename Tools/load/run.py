#!/usr/bin/env python3
"""The load and fault suite: starts the whole system (aws-marketplace-sim, identity, organization,
marketplace-link, the console) on loopback, drives buyer journeys at a steady rate while the
fault injector kills, restarts, stops and throttles its parts, restores everything, gives the
services a minute to finish what is in flight, then checks the invariants. With --soak, then
runs h2load at saturation on GetMe, CheckAdmin and GetBillingStatus and samples each service's
RSS. Prints a report (and writes it as JSON with --report); exits 1 when an invariant or the
soak failed.

  Tools/load/run.py --bin DIR [--backend sqlite|postgres] [--replicas N] [--seconds 60] [--rate 1.5]
                    [--no-faults | --fault-kinds KIND,...] [--soak SECONDS] [--seed N] [--report FILE] [--keep]

DIR holds release builds of the five executables (Tools/load/run.sh builds them and passes them).
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driver import Driver  # noqa: E402
from faults import KINDS, FaultInjector  # noqa: E402
import invariants  # noqa: E402
from soak import soak  # noqa: E402
from system import System  # noqa: E402


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def report_of(args, driver, faults, owed, settle_seconds, results, soaked):
    steps = {name: {"count": len(values), "p50_ms": round(1000 * statistics.median(values)), "p99_ms": round(1000 * percentile(values, 0.99))}
             for name, values in sorted(driver.stats.latencies.items())}
    return {
        "backend": args.backend, "replicas": args.replicas, "seconds": args.seconds, "rate": args.rate, "seed": args.seed,
        "journeys": {"started": driver.stats.started, "completed": driver.stats.completed, "failed": driver.stats.failed,
                     "elapsed_s": round(driver.elapsed, 1), "completed_per_s": round(driver.stats.completed / driver.elapsed, 2)},
        "steps": steps,
        "retried_errors": {step: dict(codes) for step, codes in sorted(driver.stats.attempt_errors.items()) if codes},
        "refusals": {mistake: dict(codes) for mistake, codes in sorted(driver.stats.refusals.items())},
        "faults": faults.log if faults else [],
        "settled_in_s": round(settle_seconds, 1), "owed_after_settling": owed,
        "invariants": [{"invariant": name, "held": held, "detail": detail} for name, held, detail in results],
        "soak": soaked,
    }


def print_report(report):
    j = report["journeys"]
    print(f"load: {report['backend']}, {report['replicas']} replica(s) per service, {report['seconds']} s at {report['rate']} journeys/s, seed {report['seed']}")
    print(f"journeys: {j['started']} started, {j['completed']} completed, {j['failed']} failed in {j['elapsed_s']} s: "
          f"{j['completed_per_s']} completed/s")
    print("steps (latency with retries):")
    for name, step in report["steps"].items():
        print(f"  {name:22} {step['count']:6}  p50 {step['p50_ms']:6} ms  p99 {step['p99_ms']:6} ms")
    print("errors retried, by step and code:", json.dumps(report["retried_errors"]) if report["retried_errors"] else "none")
    print("refusals, by mistake and code:", json.dumps(report["refusals"]))
    print("faults:")
    for fault in report["faults"]:
        print(f"  {fault['at']:7.1f} s  {fault['what']}")
    print(f"settled in {report['settled_in_s']} s after the last fault; still owed: {report['owed_after_settling']}")
    print("invariants:")
    for item in report["invariants"]:
        print(f"  {'held  ' if item['held'] else 'BROKEN'} {item['invariant']}: {item['detail']}")
    if report["soak"]:
        soaked = report["soak"]
        print(f"soak: {soaked['seconds']} s")
        for name, calls in soaked["calls"].items():
            print(f"  {name:17} {calls['total']:9} calls, {calls['failed']} failed, {calls['req_per_s']} req/s")
        for name, rss in soaked["rss"].items():
            print(f"  {name:17} RSS start {rss['start_kib'] // 1024} MiB, warm {rss['warm_kib'] // 1024} MiB, "
                  f"end {rss['end_kib'] // 1024} MiB, max {rss['max_kib'] // 1024} MiB")


def soak_failures(soaked):
    failures = [f"{name}: {calls['failed']} calls failed" for name, calls in soaked["calls"].items() if calls["failed"]]
    for name, rss in soaked["rss"].items():
        # Once warm, memory stays flat: allow allocator noise, not growth.
        grown = rss["end_kib"] - rss["warm_kib"]
        if grown > max(rss["warm_kib"] // 10, 16 * 1024):
            failures.append(f"{name}: RSS grew from {rss['warm_kib'] // 1024} MiB warm to {rss['end_kib'] // 1024} MiB")
    return failures


async def load(args, system):
    driver = Driver(system, rate=args.rate, seconds=args.seconds, seed=args.seed)
    faults = FaultInjector(system, seconds=args.seconds, seed=args.seed, kinds=args.fault_kinds.split(",")) if args.faults else None
    await asyncio.gather(driver.run(), *( [faults.run()] if faults else []))
    return driver, faults


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1.5, help="journeys started per second")
    parser.add_argument("--no-faults", dest="faults", action="store_false")
    parser.add_argument("--fault-kinds", default=",".join(KINDS), help="the faults to inject, comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--soak", type=float, default=0, help="seconds of h2load at saturation after the load")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--metering-hour", type=int, default=20, help="seconds in a metering hour")
    parser.add_argument("--report")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = tempfile.mkdtemp(prefix="load-")
    system = System(args.bin, work, backend=args.backend, replicas=args.replicas,
                    buyers=int(args.rate * args.seconds * 1.2) + 50, metering_hour=args.metering_hour)
    failed = True
    try:
        system.start()
        driver, faults = asyncio.run(load(args, system))
        if faults:
            faults.heal()
        owed, settle_seconds = invariants.settle(system, within=60 + 2 * args.metering_hour)
        results = invariants.check(system, driver)
        soaked = None
        if args.soak:
            finished = [j for j in driver.journeys if j["done"] and not j["cancelled"]]
            soaked = soak(system, finished[0], args.soak)
            results.append(("soak: every call answered, RSS flat once warm", not soak_failures(soaked), "; ".join(soak_failures(soaked))))
        report = report_of(args, driver, faults, owed, settle_seconds, results, soaked)
        print_report(report)
        if args.report:
            with open(args.report, "w") as file:
                json.dump(report, file, indent=1)
        failed = not all(held for _, held, _ in results)
    finally:
        system.stop()
        if failed or args.keep:
            print(f"work directory (logs, databases): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
