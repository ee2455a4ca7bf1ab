"""Run Flower's SuperNode with a shorter wait between its polls of the SuperLink.

flwr 1.42's SuperNode loop sleeps a hard-coded 3 s whenever a pull finds no message, and 0.5 s between
checks for a finished reply. Every round has two exchanges (train, evaluate), so those waits alone
add about 4 s to a round on average, which at the demo's data sizes is a large share of it. There is
no flag for either wait; this launcher caps the sleeps of that one module and then runs the stock
`flower-supernode` entry point with the same arguments. Each extra poll is one small request to the
SuperLink; `NEUROFED_FLOWER_NODE_POLL_S` raises the cap for a SuperLink with many sites.

    python -m federation.supernode_launcher --superlink HOST:PORT ...   (same options as flower-supernode)
"""

import os
import sys
import time

DEFAULT_POLL_S = 0.2


class CappedSleep:
    """Stands in for the `time` module inside flwr's SuperNode loop: `sleep` waits at most `cap_s`."""

    def __init__(self, cap_s: float):
        self.cap_s = cap_s

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.cap_s))

    def __getattr__(self, name):
        return getattr(time, name)


def poll_cap_s() -> float:
    raw = os.environ.get("NEUROFED_FLOWER_NODE_POLL_S", "")
    try:
        value = float(raw) if raw else DEFAULT_POLL_S
    except ValueError:
        raise SystemExit(f"NEUROFED_FLOWER_NODE_POLL_S must be a number of seconds, got {raw!r}") from None
    if not 0.01 <= value <= 3.0:
        raise SystemExit(f"NEUROFED_FLOWER_NODE_POLL_S must be between 0.01 and 3 seconds, got {value}")
    return value


def install(cap_s: float) -> None:
    from flwr.supernode import start_client_internal

    # The loop refers to the module through this global name; fail loudly if a flwr upgrade moved it.
    if getattr(start_client_internal, "time", None) is not time and not isinstance(start_client_internal.time,
                                                                                   CappedSleep):
        raise RuntimeError("flwr.supernode.start_client_internal no longer imports `time`; review this launcher")
    start_client_internal.time = CappedSleep(cap_s)


def main() -> None:
    install(poll_cap_s())
    from flwr.supernode.cli.flower_supernode import flower_supernode

    sys.argv = ["flower-supernode", *sys.argv[1:]]
    flower_supernode()


if __name__ == "__main__":
    main()
