#!/bin/sh
# Run a command inside a fresh private network namespace with a link that carries mDNS:
# loopback up, and a veth pair (mdnsa 10.99.0.1/24, mdnsb 10.99.0.2/24) with multicast on
# and the default route through it, so that browsers see a "default route" address to
# hide behind an mDNS name. Both ends live in the namespace: nothing leaves it. Needs root
# (or CAP_SYS_ADMIN); uses util-linux `unshare` and iproute2.
#
#   peers/netns_mdns.sh cargo test --test interop_mdns -- --ignored
set -e
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
exec unshare --net -- sh -c '
  ip link set lo up &&
  ip link add mdnsa type veth peer name mdnsb &&
  ip addr add 10.99.0.1/24 dev mdnsa &&
  ip addr add 10.99.0.2/24 dev mdnsb &&
  ip link set mdnsa multicast on up &&
  ip link set mdnsb multicast on up &&
  ip route add default via 10.99.0.2 dev mdnsa &&
  ICE_PEERS_NETNS=1 exec "$@"' netns-mdns-sh "$@"
