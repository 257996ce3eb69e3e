#!/bin/sh
# Run a command inside a fresh private network namespace whose loopback is slow: MTU 1500
# and a token bucket (tc tbf) of 8 kbit/s (1000 bytes a second, 1600 bytes of burst), so
# that once the bucket is empty every packet waits its turn (a 60-byte SYN about 60 ms).
# Crossing SYNs need that: on a fast loopback a SYN to a port where nothing listens is
# answered by a reset at once. Nothing run inside can reach any other address. Needs root
# (or CAP_SYS_ADMIN); uses util-linux `unshare` and iproute2. Exits 77 if the kernel has
# no tbf qdisc.
#
#   peers/netns_slow.sh cargo test --test icetcp_so -- --ignored
set -e
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
exec unshare --net -- sh -c '
  ip link set lo up &&
  ip link set lo mtu 1500 &&
  { tc qdisc add dev lo root tbf rate 8kbit burst 1600 latency 30s ||
    { echo "netns_slow.sh: no tbf qdisc (sch_tbf)" >&2; exit 77; }; } &&
  ICE_PEERS_NETNS=1 exec "$@"' netns-slow-sh "$@"
