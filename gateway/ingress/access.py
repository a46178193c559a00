"""Who may deliver callbacks: the source-network allowlist and the secret path token (no I/O)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccessPolicy:
    """``networks`` empty allows every peer; ``token`` empty means the path carries none."""

    def __init__(self, networks: Sequence[str], token: str) -> None:
        self._networks: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        self._token = token.encode("utf-8")

    def peer_allowed(self, peer: str | None) -> bool:
        """Whether a peer address (as the socket gives it) is in an allowed network."""
        if not self._networks:
            return True
        address = _address(peer)
        if address is None:
            return False
        return any(address in network for network in self._networks)

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison with the configured token."""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._token)


def _address(peer: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not peer:
        return None
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return address
