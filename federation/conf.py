"""Federation settings, read from the environment in one place (with Django settings able to override).

Kept here rather than in platform/settings.py so the Flower daemons and app processes can read them
without the rest of the platform's configuration.
"""

import ipaddress
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from neurofed.env import env_bool, env_int, env_str


def _setting(name: str, default):
    return getattr(settings, name, default)


def federation_home() -> Path:
    """Where the SuperLink state database, FLWR_HOME, node keys and logs live."""
    return Path(_setting("FEDERATION_HOME", env_str("FEDERATION_HOME", str(settings.VAR_DIR / "federation"))))


def superlink_address(given: str | None = None) -> str:
    """host:port of the SuperLink (Fleet, Control and Runtime APIs share one port in flwr 1.42).

    `given` (a command's option) wins over the setting. Either way the address is checked: see
    address_problem.
    """
    address = given or _setting("FEDERATION_SUPERLINK_ADDRESS",
                                env_str("FEDERATION_SUPERLINK_ADDRESS", "127.0.0.1:9092"))
    problem = address_problem(address)
    if problem:
        where = "" if given else "FEDERATION_SUPERLINK_ADDRESS="
        raise ImproperlyConfigured(f"{where}{address}: {problem}")
    return address


def address_problem(address: str) -> str:
    """Why `address` cannot be the SuperLink's address, or "".

    The address is where everything connects to the SuperLink: the nodes and, unless it listens on every
    interface (superlink_listen_all), its own health check, its SuperExec and the `flwr` config the
    platform's workers use; TLS checks its host against the certificate's names. Nothing can connect to a
    wildcard (0.0.0.0, ::), and no certificate is made for one, so a SuperLink addressed so would start
    and then never be reached; listening on every interface is its own setting.
    """
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        return "give host:port, e.g. fl.example.org:9092."
    bare = host.strip("[]")
    try:
        wildcard = not bare or ipaddress.ip_address(bare).is_unspecified
    except ValueError:  # a host name
        wildcard = False
    if wildcard:
        return ("a wildcard address can be listened on but never connected to, and the SuperLink connects to "
                "its own address. Give the host name the nodes reach it by, the one its certificate was made "
                "for (federation_certs --hosts), e.g. fl.example.org:9092; to listen on every interface, set "
                "FEDERATION_SUPERLINK_LISTEN_ALL=1 (federation_superlink --listen-all) as well.")
    return ""


def superlink_listen_all() -> bool:
    """Whether the SuperLink listens on every IPv4 interface (0.0.0.0) instead of on its address's host.

    For a coordinator whose public name is not one of its own interfaces: in a container, or behind NAT
    or a load balancer. Nodes still connect by FEDERATION_SUPERLINK_ADDRESS, the name on its certificate;
    the SuperLink's own connections (its health check, its SuperExec, the `flwr` configuration the
    federation worker reads) then go to 127.0.0.1, which every certificate federation_certs makes names.
    """
    return bool(_setting("FEDERATION_SUPERLINK_LISTEN_ALL", env_bool("FEDERATION_SUPERLINK_LISTEN_ALL", False)))


def tls_dir() -> Path | None:
    """A folder with ca.crt, server.pem, server.key (SuperLink) for TLS; None means plain loopback."""
    raw = _setting("FEDERATION_TLS_DIR", env_str("FEDERATION_TLS_DIR", ""))
    return Path(raw) if raw else None


def node_auth() -> bool:
    return bool(_setting("FEDERATION_NODE_AUTH", env_bool("FEDERATION_NODE_AUTH", False)))


def phase_timeout_s() -> int:
    """How long the ServerApp waits for nodes' replies in one phase (train or evaluate) of a round.

    Flower's own default is an hour; a node that died mid-round is only declared offline after about
    46 s, so this bounds how long a round can wait for a node that will never answer.
    """
    return int(_setting("FEDERATION_PHASE_TIMEOUT_S", env_int("FEDERATION_PHASE_TIMEOUT_S", 600)))


def node_wait_s() -> int:
    """How long a round waits for the minimum number of nodes to be connected before the run fails."""
    return int(_setting("FEDERATION_NODE_WAIT_S", env_int("FEDERATION_NODE_WAIT_S", 120)))


def run_deadline_s() -> int:
    """Hard ceiling on a whole run, enforced by the platform: past it the run is stopped and failed."""
    return int(_setting("FEDERATION_RUN_DEADLINE_S", env_int("FEDERATION_RUN_DEADLINE_S", 4 * 3600)))


def superlink_lost_s() -> int:
    """How long the platform tolerates an unreachable SuperLink before it fails the run."""
    return int(_setting("FEDERATION_SUPERLINK_LOST_S", env_int("FEDERATION_SUPERLINK_LOST_S", 60)))


def min_node_cases() -> int:
    """The fewest cases a hospital trains on in a run. A weight update computed from a handful of patients
    says more about each of them than one from many (and a node's evaluation figures on three cases say
    what each was), so a node with fewer sends nothing, and the coordinator leaves such a hospital out of
    its count up front. Each node reads this from its own configuration: a coordinator cannot lower it."""
    value = int(_setting("FEDERATION_MIN_NODE_CASES", env_int("FEDERATION_MIN_NODE_CASES", 20)))
    if value < 1:
        raise ImproperlyConfigured(f"FEDERATION_MIN_NODE_CASES must be at least 1, not {value}")
    return value
