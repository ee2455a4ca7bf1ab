"""Federation settings, read from the environment in one place (with Django settings able to override).

Kept here rather than in platform/settings.py so the Flower daemons and app processes can read them
without the rest of the platform's configuration.
"""

from pathlib import Path

from django.conf import settings

from neurofed.env import env_bool, env_int, env_str


def _setting(name: str, default):
    return getattr(settings, name, default)


def federation_home() -> Path:
    """Where the SuperLink state database, FLWR_HOME, node keys and logs live."""
    return Path(_setting("FEDERATION_HOME", env_str("FEDERATION_HOME", str(settings.VAR_DIR / "federation"))))


def superlink_address() -> str:
    """host:port of the SuperLink (Fleet, Control and Runtime APIs share one port in flwr 1.42)."""
    return _setting("FEDERATION_SUPERLINK_ADDRESS", env_str("FEDERATION_SUPERLINK_ADDRESS", "127.0.0.1:9092"))


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
