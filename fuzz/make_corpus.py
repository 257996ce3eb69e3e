#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (see fuzz/README.md).

Sources:
- the STUN test vectors in librice-proto/src/stun/tests/vectors.rs (RFC 5769, RFC 8489 B.1);
- the candidate lines in the candidate tests (librice-proto/src/candidate/*.rs);
- optionally a loopback capture (pcap, as `tcpdump -i lo -w FILE 'udp or tcp'` writes it)
  taken while the interop tests ran: the STUN, TURN and ChannelData messages in it;
- hand-made operation lists for the targets whose input is a script (agent_incoming,
  turn_client_recv), built around those messages.

Usage: python3 fuzz/make_corpus.py [capture.pcap]
Without a capture, the messages already kept in fuzz/corpus/stun_parse/capture-* are reused,
so the corpus can be rebuilt from the repository alone. Standard library only.
"""

import hashlib
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAGIC = 0x2112A442

# --- sources -------------------------------------------------------------------------------


def vectors():
    """(name, bytes) of every hex constant in the STUN vector tests."""
    text = open(os.path.join(ROOT, "librice-proto/src/stun/tests/vectors.rs")).read()
    out = []
    for name, body in re.findall(r'const (\w+): &str = "([0-9a-f\s]+)";', text):
        out.append((name.lower(), bytes.fromhex("".join(body.split()))))
    return out


def candidate_lines():
    """The literal candidate lines of the candidate tests (format strings left out)."""
    lines = set()
    folder = os.path.join(ROOT, "librice-proto/src/candidate")
    for name in sorted(os.listdir(folder)):
        text = open(os.path.join(folder, name), encoding="utf-8").read()
        for line in re.findall(r'"((?:a=)?candidate:[^"{}\\]*)"', text):
            lines.add(line)
    return sorted(lines)


def pcap_payloads(path):
    """(proto, src port, dst port, payload) of every UDP/TCP packet with data in a pcap."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[off : off + 16])
        pkt = data[off + 16 : off + 16 + caplen]
        off += 16 + caplen
        if linktype == 1:  # Ethernet
            ethertype = struct.unpack(">H", pkt[12:14])[0]
            pkt = pkt[14:]
        elif linktype == 113:  # Linux cooked
            ethertype = struct.unpack(">H", pkt[14:16])[0]
            pkt = pkt[16:]
        else:
            raise SystemExit(f"unsupported link type {linktype}")
        if ethertype == 0x0800:
            ihl = (pkt[0] & 15) * 4
            proto, l4 = pkt[9], pkt[ihl:]
        elif ethertype == 0x86DD:
            proto, l4 = pkt[6], pkt[40:]
        else:
            continue
        if proto == 17 and len(l4) >= 8:
            sport, dport = struct.unpack(">HH", l4[:4])
            yield ("udp", sport, dport, l4[8:])
        elif proto == 6 and len(l4) >= 20:
            sport, dport = struct.unpack(">HH", l4[:4])
            doff = (l4[12] >> 4) * 4
            if len(l4) > doff:
                yield ("tcp", sport, dport, l4[doff:])


def is_stun(b):
    return (
        len(b) >= 20
        and b[0] & 0xC0 == 0
        and struct.unpack(">I", b[4:8])[0] == MAGIC
        and 20 + struct.unpack(">H", b[2:4])[0] == len(b)
    )


def is_channel_data(b):
    return len(b) >= 4 and 0x40 <= b[0] <= 0x4F and 4 + struct.unpack(">H", b[2:4])[0] <= len(b)


def signature(b):
    """Message type and attribute types: one seed per signature keeps the corpus small."""
    types, i = [], 20
    while i + 4 <= len(b):
        t, n = struct.unpack(">HH", b[i : i + 4])
        types.append(t)
        i += 4 + ((n + 3) & ~3)
    return (b[:2], tuple(types))


def role_of(msg):
    """'turn-server' for what a TURN server sends (responses to TURN methods, Data
    indications), 'turn-client' for TURN requests and Send indications, 'ice' for the rest
    (Binding: ICE checks and STUN)."""
    t = struct.unpack(">H", msg[:2])[0]
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    klass = ((t >> 4) & 1) | ((t >> 7) & 2)
    if method in (0x003, 0x004, 0x008, 0x009):
        return "turn-client" if klass == 0 else "turn-server"
    if method == 0x006:
        return "turn-client"
    if method == 0x007:
        return "turn-server"
    return "ice"


def captured_messages(path):
    """Distinct STUN messages (one per role and signature), a few ChannelData messages and
    a few TCP segments carrying STUN or ChannelData, from a capture."""
    stun, channel, tcp, seen = [], [], [], set()
    for proto, _, _, payload in pcap_payloads(path):
        if proto == "tcp":
            starts_with_stun = len(payload) >= 20 and struct.unpack(">I", payload[4:8])[0] == MAGIC
            if starts_with_stun and payload[0] & 0xC0 == 0 and len(tcp) < 4:
                tcp.append((role_of(payload), payload))
            continue
        if is_stun(payload):
            key = (role_of(payload), signature(payload))
            if key not in seen:
                seen.add(key)
                stun.append((role_of(payload), payload))
        elif is_channel_data(payload) and ("turn", payload) not in channel and len(channel) < 4:
            channel.append(("turn", payload))
    return stun, channel, tcp


def kept_captures():
    """The captured messages already in the corpus (capture-<role>-<hash>)."""
    folder = os.path.join(CORPUS, "stun_parse")
    stun, channel = [], []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        m = re.match(r"capture-(turn-server|turn-client|turn|ice)-(stun|channel)-", name)
        if m:
            data = open(os.path.join(folder, name), "rb").read()
            (stun if m.group(2) == "stun" else channel).append((m.group(1), data))
    folder = os.path.join(CORPUS, "stun_framing")
    tcp = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        m = re.match(r"capture-(turn-server|turn-client|ice)-tcp-", name)
        if m:
            tcp.append((m.group(1), open(os.path.join(folder, name), "rb").read()[2:]))
    return stun, channel, tcp


# --- writing -------------------------------------------------------------------------------


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def short_hash(data):
    return hashlib.sha1(data).hexdigest()[:10]


def chunk(body):
    """A turn_client_recv operation body: 16-bit big-endian length, then the bytes."""
    return struct.pack(">H", len(body)) + body


def op(code, body=b""):
    return bytes([code]) + chunk(body)


# turn_client_recv operations (see its module docs).
RAW, ELSEWHERE, WITH_ID, SIGNED, CHANNEL_DATA, DATA_IND, STREAM, CALLER = range(8)
# CALLER sub-operations.
ADVANCE, TIMEOUT, PERMIT, BIND, SEND, CLOSE, ALLOCATE, ANSWER_ALL = range(8)


def caller(sub, *args):
    return op(CALLER, bytes([sub, *args]))


def turn_seeds(server_msgs, channel_msgs, tcp_segments):
    """Scripts for turn_client_recv: every setup stage, the captured server messages raw
    and with a live transaction id, signed answers, data, time and the caller's calls."""
    seeds = {}
    udp, tcp, v6, dual, short = 0x00, 0x08, 0x10, 0x20, 0x40
    # Every stage, then time runs past refreshes and the scripted server answers them.
    for stage in range(8):
        seeds[f"stage{stage}-refreshes"] = bytes([stage | udp]) + b"".join(
            [caller(ADVANCE, 0xFF, 0xFF), caller(TIMEOUT), caller(ANSWER_ALL)] * 3
        )
    # Allocated, then data both ways.
    seeds["allocated-data"] = bytes([4]) + b"".join(
        [
            op(CHANNEL_DATA, bytes([1]) + b"hello over channel"),
            op(CHANNEL_DATA, bytes([0x81]) + b"padded"),
            op(DATA_IND, bytes([0]) + b"hello in Data"),
            op(DATA_IND, bytes([0x42]) + b"unpermitted"),
            op(DATA_IND, bytes([0x80, 198, 51, 100, 9, 0x17, 0x70]) + b"made-up peer"),
            caller(SEND, 0, *b"to peer 0"),
            caller(SEND, 1, *b"to peer 1 on its channel"),
            caller(BIND, 2),
            caller(ANSWER_ALL),
            caller(SEND, 2, *b"to peer 2"),
        ]
    )
    # Signed answers: success and errors with their attributes, bad integrity, no
    # FINGERPRINT, ALTERNATE-SERVER, fuzzed raw attributes.
    for stage, flags, code, name in [
        (1, 0x11, 2, "challenge-401"),
        (2, 0x11, 6, "stale-nonce-438"),
        (2, 0x91, 6, "stale-nonce-438-fresh"),
        (2, 0x31, 0, "try-alternate-300"),
        (2, 0x71, 0, "try-alternate-300-v6"),
        (2, 0x10, 120, "allocate-success"),
        (2, 0x14, 120, "allocate-success-wrong-key"),
        (2, 0x16, 120, "allocate-success-sha256"),
        (2, 0x18, 120, "allocate-success-no-fingerprint"),
        (2, 0x00, 0, "allocate-success-empty"),
        (3, 0x11, 5, "permission-437"),
        (3, 0x11, 12, "permission-500"),
        (5, 0x10, 0, "close-success"),
        (5, 0x11, 5, "close-437"),
    ]:
        attrs = struct.pack(">HB", 0x000D, 4) + struct.pack(">I", 30)  # LIFETIME 30
        seeds[f"signed-{name}"] = bytes([stage]) + op(SIGNED, bytes([0, flags, code]) + attrs)
    # Refresh answered with 437: the allocation is lost.
    seeds["refresh-lost-437"] = bytes([4 | short]) + b"".join(
        [caller(ADVANCE, 0x0B, 0xB8), caller(TIMEOUT), op(SIGNED, bytes([0, 0x11, 5]))]
    )
    # IPv6 and dual allocations; TCP with a stream of frames.
    seeds["v6-allocated"] = bytes([4 | v6]) + caller(SEND, 3, *b"v6 data")
    seeds["dual-allocated"] = bytes([4 | dual]) + b"".join(
        [caller(BIND, 3), caller(ANSWER_ALL), caller(SEND, 3, *b"dual")]
    )
    stream = struct.pack(">HH", 0x4001, 5) + b"hello" + b"\0\0\0"
    seeds["tcp-stream"] = bytes([4 | tcp]) + op(STREAM, stream) + op(STREAM, stream[:3])
    # Packets from elsewhere.
    seeds["elsewhere"] = bytes([4]) + b"".join(
        op(ELSEWHERE, bytes([k]) + stream) for k in range(4)
    )
    # Captured coturn messages: as they are, and with a live transaction id.
    for role, msg in server_msgs:
        if role != "turn-server":
            continue
        stage = 1 if msg[1] & 0x10 else 4  # errors at the unsigned Allocate
        seeds[f"capture-{short_hash(msg)}"] = bytes([stage]) + b"".join(
            [op(RAW, msg), op(WITH_ID, bytes([0]) + msg)]
        )
    for role, msg in channel_msgs:
        if role == "turn":
            seeds[f"capture-channel-{short_hash(msg)}"] = bytes([4]) + op(RAW, msg)
    for _, seg in tcp_segments:
        seeds[f"capture-tcp-{short_hash(seg)}"] = bytes([1 | tcp]) + op(STREAM, seg)
    return seeds


def agent_seeds(ice_msgs):
    """Scripts for agent_incoming (48-byte chunks: op byte, then its bytes)."""

    def pad(b):
        return (b + bytes(48))[:48]

    seeds = {}
    crafted = [
        pad(bytes([0x40, 0x04 | 0x08 | 0x20, 1, 2, 3, 4, 5, 6, 7, 8])),  # request, nominating
        pad(bytes([0x44, 0x05 | 0x40, 9, 9, 9, 9, 0, 0, 0, 0])),  # success, last txid
        pad(bytes([0x45, 0x02])),  # error
        pad(bytes([0x41, 0x84])),  # request without MESSAGE-INTEGRITY
        pad(bytes([0x80 | 0x40, 0x10 | 0x04, 0xFF] * 1)),  # request, ICE-CONTROLLED
    ]
    timeout = pad(bytes([0xFF]))
    seeds["checks-and-answers"] = b"".join(crafted + [timeout] * 4 + crafted)
    seeds["timeouts"] = timeout * 40
    for role, msg in ice_msgs:
        if role == "ice" and len(seeds) < 12:
            seeds[f"capture-{short_hash(msg)}"] = pad(b"\0" + msg[:47]) + timeout + pad(
                bytes([0x44, 0x05])
            )
    return seeds


def main():
    if len(sys.argv) > 1:
        stun, channel, tcp = captured_messages(sys.argv[1])
    else:
        stun, channel, tcp = kept_captures()
    # Keep the corpus small: at most 10 captured STUN messages of each role.
    stun = [m for role in ("turn-server", "turn-client", "ice") for m in stun if m[0] == role][:30]
    stun = [m for i, m in enumerate(stun) if [r for r, _ in stun[:i]].count(m[0]) < 10]
    # The same order whether the messages come from a capture or from the corpus.
    stun, channel, tcp = sorted(stun), sorted(channel), sorted(tcp)

    for name, data in vectors():
        write("stun_parse", f"vector-{name}", data)
    for role, msg in stun:
        write("stun_parse", f"capture-{role}-stun-{short_hash(msg)}", msg)
    for role, msg in channel:
        write("stun_parse", f"capture-{role}-channel-{short_hash(msg)}", msg)

    messages = [data for _, data in vectors()] + [m for _, m in stun]
    # stun_framing: byte 0 the mode (0 STUN, 1 STUN and ChannelData, 2 RFC 4571), byte 1
    # the chunk size, then the stream.
    joined = b"".join(messages[:6])
    rfc4571 = b"".join(struct.pack(">H", len(m)) + m for m in messages[:6])
    with_channel = b"".join(
        m + (c + bytes((4 - len(c) % 4) % 4))
        for m, c in zip(messages[:4], [c for _, c in channel] or [b"\x40\x00\x00\x02hi"] * 4)
    )
    write("stun_framing", "stun-whole", bytes([0, 255]) + joined)
    write("stun_framing", "stun-bytewise", bytes([0, 0]) + joined)
    write("stun_framing", "stun-and-channel-data", bytes([1, 7]) + with_channel)
    write("stun_framing", "rfc4571", bytes([2, 13]) + rfc4571)
    write("stun_framing", "rfc4571-cut", bytes([2, 3]) + rfc4571[:-5])
    for role, seg in tcp:
        write("stun_framing", f"capture-{role}-tcp-{short_hash(seg)}", bytes([1, 31]) + seg)

    for i, line in enumerate(candidate_lines()):
        write("candidate_parse", f"test-{i:02}", line.encode())

    for name, data in turn_seeds(stun, channel, tcp).items():
        write("turn_client_recv", name, data)
    for name, data in agent_seeds(stun).items():
        write("agent_incoming", name, data)


if __name__ == "__main__":
    main()
