#!/usr/bin/env python3
"""One STUN Binding request with aioice's STUN codec (a third-party implementation),
over UDP or TCP, for librice's interop tests.

    aioice_stun_client.py [--tcp] HOST PORT

Prints the XOR-MAPPED-ADDRESS of the success response as `IP:PORT` ([IP]:PORT for
IPv6) on stdout and exits 0; on an error response, a malformed answer or a 5-second
timeout prints a one-line reason to stderr and exits 1. Over TCP, messages are framed
by their STUN header (RFC 8489 section 6.2.2).
"""
import socket
import sys

from aioice import stun


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed before a full STUN message arrived")
        data += chunk
    return data


def main():
    args = sys.argv[1:]
    tcp = "--tcp" in args
    args = [a for a in args if a != "--tcp"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = args[0], int(args[1])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.add_fingerprint()
    sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    sock.settimeout(5.0)
    try:
        sock.connect((host, port))
        sock.sendall(bytes(request))
        if tcp:
            header = recv_exact(sock, stun.HEADER_LENGTH)
            length = int.from_bytes(header[2:4], "big")
            data = header + recv_exact(sock, length)
        else:
            data = sock.recv(65536)
        response = stun.parse_message(data)
    except Exception as e:  # any failure is a one-line reason
        print(f"aioice_stun_client: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    if response.transaction_id != request.transaction_id:
        print("aioice_stun_client: response for another transaction", file=sys.stderr)
        return 1
    if response.message_class != stun.Class.RESPONSE:
        print(f"aioice_stun_client: {response.message_class.name}: "
              f"{response.attributes.get('ERROR-CODE')}", file=sys.stderr)
        return 1
    mapped = response.attributes.get("XOR-MAPPED-ADDRESS")
    if mapped is None:
        print("aioice_stun_client: no XOR-MAPPED-ADDRESS", file=sys.stderr)
        return 1
    ip, mapped_port = mapped
    print(f"[{ip}]:{mapped_port}" if ":" in ip else f"{ip}:{mapped_port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
