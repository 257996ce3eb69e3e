#!/usr/bin/env python3
"""Turns the JSON lines the interop suite records (LIBRICE_INTEROP_RESULTS) into INTEROP.md.

Usage: report.py RESULTS.jsonl RUNS FAILED_RUNS > INTEROP.md
"""
import json
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, shell=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - a missing tool just shows as unknown
        return "unknown"


def median(values):
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):.1f}" if values else "-"


def worst(values):
    values = [v for v in values if v is not None]
    return f"{max(values):.1f}" if values else "-"


def main():
    path, runs, failed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rows = OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            key = (r["peer"], r["scenario"], r["role"], r["runtime"])
            rows.setdefault(key, []).append(r)
    restarts = OrderedDict((k, v) for k, v in rows.items() if k[1].startswith("restart"))
    rows = OrderedDict((k, v) for k, v in rows.items() if k not in restarts)
    baselines = {(k[0], k[1]): v for k, v in rows.items() if k[2] == "self"}
    print("# Interop results\n")
    print(
        f"{runs} runs of the interop suite (`tests/tests/interop.rs`, `interop_restart.rs`), {runs - failed} passed "
        f"in full. Produced by `sh tests/interop/run_suite.sh {runs}`.\n"
    )
    aioice_v = version(".ci/venv/bin/python -c 'import aioice; print(aioice.__version__)'")
    nice_v = version("pkg-config --modversion nice")
    chromium_v = version("/usr/lib/chromium/chromium --version")
    coturn_v = version("dpkg-query -W -f='${Version}' coturn")
    system = f"{platform.system()} {platform.machine()}"
    print(
        f"Versions: aioice {aioice_v}, libnice {nice_v}, {chromium_v}, coturn {coturn_v}; "
        f"{system}.\n"
    )
    print(
        "Time to connected: from the moment the pairing driver had both descriptions to the "
        "later of the two `connected` events (median over the runs, ms); the columns after it "
        "give each side's own time. The last column is the same peer paired with itself in the same "
        "scenario and runs (libnice-aggressive: a libnice controlling agent with aggressive "
        "nomination and a regular libnice agent). All pairings are on loopback; Chromium's "
        "inside a private network namespace. icepeer runs with `--ta 5` (its default). "
        "icepeer and the pairing driver are release builds (`cargo test --release`).\n"
    )
    print(
        "icepeer-relay-only: icepeer announces only its relayed candidate on coturn, and "
        "the peer its host candidate. icepeer's description reaches the peer first, so the "
        "peer's first check to the relayed address leaves as soon as the peer has printed "
        "its own description; coturn drops it unless icepeer's CreatePermission for the "
        "peer's address (sent when icepeer reads that description) got there first. "
        "icepeer usually wins that race by a few hundred microseconds. When it loses, a "
        "peer that follows RFC 8445 §7.3.1.4 re-checks the pair as soon as icepeer's own "
        "check arrives through the relay; aioice 0.13 does not, and waits for its 500 ms "
        "retransmission (the `max` of those rows shows it when it happened).\n"
    )
    print(
        "| peer | scenario | icepeer role | runtime | passes | connected ms (both) "
        "| max ms (both) | icepeer ms | peer ms | peer with itself ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (peer, scenario, role, runtime), rs in rows.items():
        if role == "self":
            continue
        passes = sum(1 for r in rs if r["pass"])
        base = baselines.get((peer, scenario))
        base_ms = median([r["connect_ms"] for r in base]) if base else "-"
        print(
            f"| {peer} | {scenario} | {role.replace('icepeer-', '')} | {runtime} | {passes}/{len(rs)} "
            f"| {median([r['connect_ms'] for r in rs])} | {worst([r['connect_ms'] for r in rs])} "
            f"| {median([r['a_connect_ms'] for r in rs])} "
            f"| {median([r['b_connect_ms'] for r in rs])} | {base_ms} |"
        )
    print("\n## Baselines: each peer paired with itself\n")
    print("| peer | scenario | passes | connected ms (both) | A ms | B ms |")
    print("|---|---|---|---|---|---|")
    for (peer, scenario), rs in baselines.items():
        passes = sum(1 for r in rs if r["pass"])
        print(
            f"| {peer} | {scenario} | {passes}/{len(rs)} | {median([r['connect_ms'] for r in rs])} "
            f"| {median([r['a_connect_ms'] for r in rs])} | {median([r['b_connect_ms'] for r in rs])} |"
        )

    if restarts:
        print_restarts(restarts)


def print_restarts(restarts):
    print("\n## Restarts\n")
    print(
        "ICE restarts (`tests/tests/interop_restart.rs`; PROTOCOL.md, \"Restart\"): "
        "`{\"cmd\":\"restart\"}` goes to one side 1 s after both connected; the pairing passes "
        "when both sides report the restart with the right `by`, both print "
        "`reconnected_after_restart`, and data flows on the new pairs (`echo_ok` with "
        "`restarts` on both sides, icepeer's `recv`, Chromium's `stats`). The times are each "
        "side's own `elapsed_ms` of `reconnected_after_restart`: from the restart (the command, "
        "or reading the peer's new credentials) to its new selected pair (median over the "
        "runs, ms). `self` rows: the peer "
        "restarting with itself (restart-by-controlling: side A, controlling, restarts).\n"
    )
    print(
        "| peer | restart | icepeer role | runtime | passes | icepeer (A) ms | peer (B) ms "
        "| max ms (both) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (peer, scenario, role, runtime), rs in restarts.items():
        passes = sum(1 for r in rs if r["pass"])
        both = [
            max(r["a_restart_ms"], r["b_restart_ms"])
            for r in rs
            if r.get("a_restart_ms") is not None and r.get("b_restart_ms") is not None
        ]
        print(
            f"| {peer} | {scenario} | {role.replace('icepeer-', '')} | {runtime} "
            f"| {passes}/{len(rs)} | {median([r.get('a_restart_ms') for r in rs])} "
            f"| {median([r.get('b_restart_ms') for r in rs])} | {worst(both)} |"
        )


if __name__ == "__main__":
    main()
