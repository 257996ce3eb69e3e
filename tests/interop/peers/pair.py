#!/usr/bin/env python3
"""Run two ICE peer harnesses against each other and relay their signalling.

    pair.py --a "aioice --role controlling" --b "nice --role controlled"

A peer spec is a command line whose first word is either a known peer kind
(aioice, nice|libnice, chromium; icepeer and iceserver, librice's programs) or a path
to any executable that speaks the PROTOCOL.md JSON-lines protocol.  "iceserver
--connect IP:PORT" is one session of a running iceserver, as a peer.  Options:

    --relay a|b|both   start coturn on 127.0.0.1 and make that side relay-only
    --coturn           start coturn and substitute {turn} / {stun} in peer specs
                       (both need turn_server.py from the shared peer kit next to this file)
    --restart X@T      send {"cmd":"restart"} to side X (a or b) T seconds after both
                       connected (repeatable, e.g. --restart a@2 --restart b@5); PASS then
                       also needs both sides to reconnect after the last restart and to
                       receive data over the new pairs (PROTOCOL.md, "Restart")
    --netns            re-run everything inside a private loopback-only network
                       namespace (needed for chromium, see PROTOCOL.md)
    --timeout S        bound on the whole run (default 40)
    --json             print the summary as JSON

Exit status 0 when both sides reported ICE connected and data flowed both ways.
Only stdlib is used.  Everything stays on loopback.

In this copy (tests/interop/peers) the kinds run the wrappers next to this file: nice-peer
is built with `make -C libnice` when its source is newer, aioice-peer and chromium-peer run
under this Python (use one with aioice, e.g. .ci/venv/bin/python). icepeer and iceserver
are found in $LIBRICE_BIN_DIR, else the newest of target/release and target/debug under
$CARGO_TARGET_DIR or the repository (build them first: cargo build -p librice-examples).
"""
import argparse
import json
import os
import queue
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NICE_PEER = os.path.join(HERE, "libnice", "nice-peer")
KINDS = {
    "aioice": [sys.executable, os.path.join(HERE, "aioice_peer.py")],
    "nice": [NICE_PEER],
    "libnice": [NICE_PEER],
    "chromium": [sys.executable, os.path.join(HERE, "chromium_peer.py")],
}
LIBRICE_BINS = ("icepeer", "iceserver")
SIGNAL_KEYS = ("ufrag", "pwd", "candidates", "candidate", "end_of_candidates")


def build_nice_peer():
    """make -C libnice nice-peer, as bin/nice-peer does in the shared kit."""
    src = os.path.join(HERE, "libnice", "nice_peer.c")
    if os.path.exists(NICE_PEER) and os.path.getmtime(NICE_PEER) >= os.path.getmtime(src):
        return
    subprocess.run(["make", "-s", "-C", os.path.join(HERE, "libnice"), "nice-peer"], check=True,
                   stdout=sys.stderr)


def librice_bin(name):
    """The path of librice's program `name` (icepeer, iceserver): see the module doc."""
    if os.environ.get("LIBRICE_BIN_DIR"):
        return os.path.join(os.environ["LIBRICE_BIN_DIR"], name)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "..", "..", "..", "target")
    found = [os.path.join(target, profile, name) for profile in ("release", "debug")]
    found = [p for p in found if os.path.exists(p)]
    if not found:
        sys.exit(f"{name} not built: cargo build -p librice-examples --bin {name}")
    return max(found, key=os.path.getmtime)


def parse_restart(spec):
    """'a@2s' / 'b@1.5' -> ('A', 2.0)."""
    side, _, at = spec.partition("@")
    if side.lower() not in ("a", "b") or not at:
        raise argparse.ArgumentTypeError(f"--restart wants a@SECONDS or b@SECONDS, not {spec!r}")
    return side.upper(), float(at.rstrip("s"))


def in_private_netns():
    """True when every configured address is loopback (e.g. inside netns.sh)."""
    try:
        out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("inet", "inet6"):
            addr = parts[3].split("/")[0]
            if not (addr.startswith("127.") or addr == "::1"):
                return False
    return True


class PeerProc:
    def __init__(self, label, argv, events, log_dir):
        self.label = label
        self.argv = argv
        self.events = events
        self.stderr_path = os.path.join(log_dir, f"{label}.stderr.log")
        self.stdout_path = os.path.join(log_dir, f"{label}.stdout.jsonl")
        self.stdout_log = open(self.stdout_path, "w")
        self.stderr_file = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr_file, text=True, bufsize=1)
        self.lock = threading.Lock()
        self.stdin_open = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            t = time.monotonic()
            self.stdout_log.write(line)
            self.stdout_log.flush()
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.events.put((t, self.label, {"event": "_bad_line", "line": line}))
                continue
            self.events.put((t, self.label, msg))
        self.events.put((time.monotonic(), self.label, {"event": "_eof"}))

    def send(self, msg):
        with self.lock:
            if not self.stdin_open:
                return
            try:
                self.proc.stdin.write(json.dumps(msg) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.stdin_open = False

    def close_stdin(self):
        with self.lock:
            if self.stdin_open:
                self.stdin_open = False
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass

    def stop(self, grace=5.0):
        self.close_stdin()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.terminate()  # this PID is our own child
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        self.thread.join(timeout=2)
        self.stdout_log.close()
        self.stderr_file.close()
        return self.proc.returncode


def build_argv(spec, turn_addr, relay, turn_transport):
    words = shlex.split(spec)
    if not words:
        sys.exit("empty peer spec")
    if words[0] in ("nice", "libnice"):
        build_nice_peer()
    if words[0] in LIBRICE_BINS:
        head = [librice_bin(words[0])]
    else:
        head = KINDS.get(words[0], [words[0]])
    rest = [w.replace("{turn}", turn_addr or "").replace("{stun}", turn_addr or "") for w in words[1:]]
    if relay:
        rest += ["--turn", turn_addr, "--turn-user", "test", "--turn-pass", "test",
                 "--turn-transport", turn_transport, "--relay-only"]
    return head + rest


def run(args):
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="icepair-")
    os.makedirs(log_dir, exist_ok=True)
    specs = {"A": args.a, "B": args.b}
    if any(shlex.split(s)[0] == "chromium" for s in specs.values()) and not in_private_netns():
        sys.exit("chromium peers must run inside a private loopback-only netns: add --netns "
                 "(see PROTOCOL.md, 'Chromium')")

    turn = None
    turn_addr = None
    if args.coturn or args.relay != "none":
        sys.path.insert(0, HERE)
        import turn_server  # noqa: E402  (local helper)
        tls = args.turn_transport == "tls"
        turn = turn_server.TurnServer(port=args.turn_port, log_path=os.path.join(log_dir, "coturn.log"),
                                       verbose=True, tls=tls)
        turn.start()
        turn_addr = f"127.0.0.1:{turn.tls_port if tls else turn.port}"

    events = queue.Queue()
    t_start = time.monotonic()
    peers = {}
    try:
        for label in ("A", "B"):
            relay = args.relay in (label.lower(), "both")
            argv = build_argv(specs[label], turn_addr, relay, args.turn_transport)
            peers[label] = PeerProc(label, argv, events, log_dir)
        other = {"A": "B", "B": "A"}
        st = {lab: {"desc_at": None, "connected": None, "failed": None, "done": None,
                    "rx": 0, "echo_ok": [], "exit": None, "eof": False, "cands": [],
                    "pairs": None, "peer_elapsed_ms": None, "stats": None, "dtls": None,
                    "restarted": [], "reconnected": [], "rx_after": 0, "echo_after": [],
                    "selected_changed": [], "errors": []}
              for lab in peers}
        deadline = t_start + args.timeout
        both_conn_at = None
        restarts = sorted(args.restart or [], key=lambda r: r[1])
        pending = list(restarts)
        last_restart_at = None
        reconn_both_at = None
        while time.monotonic() < deadline:
            try:
                t, lab, msg = events.get(timeout=0.2)
            except queue.Empty:
                t, lab, msg = None, None, None
            if msg is not None:
                s = st[lab]
                if any(k in msg for k in SIGNAL_KEYS) and "event" not in msg:
                    if "ufrag" in msg and s["desc_at"] is None:
                        s["desc_at"] = t
                    s["cands"] += list(msg.get("candidates") or [])
                    if msg.get("candidate"):
                        s["cands"].append(msg["candidate"])
                    peers[other[lab]].send(msg)
                else:
                    ev = msg.get("event")
                    if args.verbose:
                        print(f"{t - t_start:8.3f}s {lab}: {json.dumps(msg)[:300]}", file=sys.stderr)
                    if last_restart_at is not None and t >= last_restart_at:
                        if ev == "recv" and s["reconnected"] and t >= s["reconnected"][-1][0]:
                            s["rx_after"] += 1
                        elif ev in ("stats", "done") and s["reconnected"] and \
                                t >= s["reconnected"][-1][0] and msg.get("bytes_received") and \
                                msg.get("bytes_sent"):
                            # Chromium: bytes both ways on the selected pair, which is the new one
                            s["rx_after"] += 1
                    if ev == "restarted":
                        s["restarted"].append(msg.get("by"))
                    elif ev == "reconnected_after_restart":
                        s["reconnected"].append((t, msg))
                    elif ev == "selected_changed":
                        s["selected_changed"].append(msg)
                    elif ev == "error":
                        s["errors"].append(msg.get("reason"))
                    elif ev == "echo_ok" and msg.get("restarts"):
                        s["echo_after"].append(msg.get("component"))
                    if ev == "connected" and s["connected"] is None:
                        s["connected"] = t
                        s["pairs"] = msg.get("pairs") or {"1": {"local": msg.get("local"), "remote": msg.get("remote")}}
                        s["peer_elapsed_ms"] = msg.get("elapsed_ms")
                    elif ev == "failed" and s["failed"] is None:
                        s["failed"] = msg.get("reason", "")
                    elif ev == "recv":
                        s["rx"] += 1
                    elif ev == "echo_ok":
                        s["echo_ok"].append(msg.get("component"))
                    elif ev == "done" and msg.get("ok"):
                        s["done"] = t
                        if "bytes_received" in msg:
                            s["stats"] = msg
                    elif ev == "stats":
                        s["stats"] = msg
                    elif ev == "dtls":
                        s["dtls"] = msg.get("state")
                    elif ev == "exit":
                        s["exit"] = msg.get("reason")
                    elif ev == "_eof":
                        s["eof"] = True
            a, b = st["A"], st["B"]
            if a["connected"] and b["connected"] and both_conn_at is None:
                both_conn_at = time.monotonic()
            if a["failed"] or b["failed"] or (a["eof"] and not a["connected"]) or (b["eof"] and not b["connected"]):
                break
            if a["eof"] and b["eof"]:
                break
            if both_conn_at is not None and pending and time.monotonic() - both_conn_at >= pending[0][1]:
                lab, _ = pending.pop(0)
                last_restart_at = time.monotonic()
                for x in (a, b):
                    x["reconnected"] = []
                    x["rx_after"] = 0
                    x["echo_after"] = []
                if args.verbose:
                    print(f"{last_restart_at - t_start:8.3f}s {lab} <- {{\"cmd\":\"restart\"}}",
                          file=sys.stderr)
                peers[lab].send({"cmd": "restart"})
            if restarts:
                if a["errors"] or b["errors"]:  # e.g. restart_unsupported (aioice)
                    break
                # after the last restart: both reconnected and data over the new pairs
                if pending or last_restart_at is None:
                    continue
                if a["reconnected"] and b["reconnected"] and reconn_both_at is None:
                    reconn_both_at = time.monotonic()
                if reconn_both_at is None:
                    continue
                if all(x["rx_after"] > 0 for x in (a, b)) and (
                        all(x["echo_after"] or x["dtls"] is not None for x in (a, b)) or
                        time.monotonic() - reconn_both_at > args.data_grace):
                    break
                continue
            if both_conn_at is not None:
                rx_ok = all(x["rx"] > 0 or x["done"] for x in (a, b))
                if a["done"] and b["done"]:
                    break
                if rx_ok and time.monotonic() - both_conn_at > args.data_grace:
                    break
        # give stragglers a moment, then shut down
        time.sleep(0.3)
        while True:
            try:
                t, lab, msg = events.get_nowait()
            except queue.Empty:
                break
            if msg.get("event") == "recv":
                st[lab]["rx"] += 1
    finally:
        codes = {lab: p.stop() for lab, p in peers.items()}
        if turn is not None:
            turn.stop()

    sig_done = max([x["desc_at"] for x in st.values() if x["desc_at"]] or [t_start])
    res = {"a": args.a, "b": args.b, "relay": args.relay, "log_dir": log_dir, "sides": {}}
    if restarts:
        res["restarts"] = [f"{lab.lower()}@{at:g}s" for lab, at in restarts]
    ok = True
    for lab in ("A", "B"):
        s = st[lab]
        conn = s["connected"] is not None
        rx_ok = s["rx"] > 0 or bool(s["done"])
        ok = ok and conn and rx_ok
        res["sides"][lab] = {
            "connected": conn,
            "failed": s["failed"],
            "ms_from_start": round((s["connected"] - t_start) * 1000, 1) if conn else None,
            "ms_after_signalling": round((s["connected"] - sig_done) * 1000, 1) if conn else None,
            "peer_reported_elapsed_ms": s["peer_elapsed_ms"],
            "received_data": rx_ok,
            "rx_events": s["rx"],
            "echo_ok_components": sorted(c for c in s["echo_ok"] if c is not None),
            "done": bool(s["done"]),
            "selected": s["pairs"],
            "local_candidates": s["cands"],
            "stats": s["stats"],
            "exit": s["exit"],
            "exit_code": codes.get(lab),
        }
        if restarts:
            r = res["sides"][lab]
            r["restarted"] = s["restarted"]
            r["reconnected_after_restart"] = s["reconnected"][-1][1] if s["reconnected"] else None
            r["rx_after_restart"] = s["rx_after"]
            r["echo_ok_after_restart"] = sorted(c for c in s["echo_after"] if c is not None)
            r["errors"] = s["errors"]
            ok = ok and len(s["restarted"]) == len(restarts) and bool(s["reconnected"]) and \
                s["rx_after"] > 0
        if s["selected_changed"]:
            res["sides"][lab]["selected_changed"] = s["selected_changed"]
    res["ok"] = ok
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="peer A spec, e.g. 'aioice --role controlling'")
    p.add_argument("--b", required=True, help="peer B spec, e.g. 'nice --role controlled'")
    p.add_argument("--relay", default="none", choices=["none", "a", "b", "both"])
    p.add_argument("--turn-transport", default="udp", choices=["udp", "tcp", "tls"],
                   help="client-to-coturn transport for --relay (tls: coturn TLS listener, self-signed)")
    p.add_argument("--coturn", action="store_true", help="start coturn, substitute {turn}/{stun}")
    p.add_argument("--turn-port", type=int, default=0, help="coturn port (0 = pick a free one)")
    p.add_argument("--netns", action="store_true", help="run inside a private loopback-only netns")
    p.add_argument("--timeout", type=float, default=40.0)
    p.add_argument("--data-grace", type=float, default=3.0,
                   help="after both connected and data seen both ways, wait this long for 'done'")
    p.add_argument("--restart", action="append", type=parse_restart, metavar="X@SECONDS",
                   help="send {\"cmd\":\"restart\"} to side X (a|b) SECONDS after both connected "
                        "(repeatable)")
    p.add_argument("--log-dir")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()

    if args.netns and os.environ.get("ICE_PEERS_NETNS") != "1":
        netns = os.path.join(HERE, "netns.sh")
        argv = [netns, sys.executable, os.path.abspath(__file__)] + [a for a in sys.argv[1:] if a != "--netns"]
        os.execv(netns, argv)

    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        status = "PASS" if res["ok"] else "FAIL"
        print(f"{status}  A=[{res['a']}]  B=[{res['b']}]  relay={res['relay']}"
              + (f"  restart={','.join(res['restarts'])}" if res.get("restarts") else ""))
        for lab in ("A", "B"):
            s = res["sides"][lab]
            sel = (s["selected"] or {}).get("1") or {}
            print(f"  {lab}: connected={s['connected']} t_connect={s['ms_after_signalling']}ms "
                  f"(from start {s['ms_from_start']}ms, peer says {s['peer_reported_elapsed_ms']}ms) "
                  f"rx_data={s['received_data']}({s['rx_events']}) echo_ok={s['echo_ok_components']} "
                  f"failed={s['failed']}")
            if sel:
                print(f"     selected: {sel.get('local')}  <->  {sel.get('remote')}")
            if s["stats"]:
                print(f"     stats: {json.dumps(s['stats'])}")
            if "restarted" in s:
                r = s["reconnected_after_restart"] or {}
                print(f"     restarted={s['restarted']} reconnected_after_restart="
                      f"{r.get('elapsed_ms')}ms (by {r.get('by')}) rx_after_restart="
                      f"{s['rx_after_restart']} echo_ok_after_restart={s['echo_ok_after_restart']}"
                      f" errors={s['errors']}")
                if r:
                    print(f"     new selected: {r.get('local')}  <->  {r.get('remote')}")
            for c in s.get("selected_changed") or []:
                print(f"     selected_changed: {c.get('local')}  <->  {c.get('remote')}")
        print(f"  logs: {res['log_dir']}")
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
