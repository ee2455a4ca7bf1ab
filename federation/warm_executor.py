"""A SuperExec for a hospital's SuperNode that runs each ClientApp task in a fork of a warm process.

Flower 1.42 starts a fresh `flwr-clientapp` process for every message (one train and one evaluate per
round). With TensorFlow that is several seconds of imports each time, which at the demo's data sizes is
a large share of a round. This process imports TensorFlow, Keras, Django and the ClientApp once, then
runs Flower's own SuperExec loop with an executor that forks itself per task: the child already has
everything imported and runs Flower's own `run_clientapp` for the task's token.

Fork safety: the parent never runs a TensorFlow op and never opens a database connection, so the child
does not inherit TensorFlow thread pools or a shared socket; each child starts both fresh.

Start it next to a SuperNode started with `--isolation process` (see federation/daemons.py).
"""

import argparse
import logging
import os
import sys
import time


def preload() -> None:
    """Everything a ClientApp task would otherwise import on every message."""
    import django

    django.setup()
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    import federation.client_app  # noqa: F401


class ForkExecutor:
    """Implements flwr's SuperExec Executor protocol by forking the warm parent for each task."""

    def __init__(self):
        self.children: dict[int, float] = {}

    def get_eligible_capacity(self, supported_task_types, *, insecure=False, root_certificates_path=None):
        return supported_task_types, set()

    def wait_for_capacity(self, task_type=None, *, fab_hash=None, insecure=False, root_certificates_path=None):
        return None

    def launch(self, spec):
        from flwr.supercore.superexec.executor.types import LaunchResult

        from django.db import connections

        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                from flwr.supernode.runtime.run_clientapp import run_clientapp

                run_clientapp(
                    runtime_api_address=spec.runtime_api_address,
                    token=spec.token,
                    insecure=spec.insecure,
                    certificates=None,
                    parent_pid=None,
                    runtime_dependency_install=False,
                )
                code = 0
            except SystemExit as exc:  # run_clientapp ends with flwr_exit(), i.e. sys.exit
                code = exc.code if isinstance(exc.code, int) else 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = time.monotonic()
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.pop(pid, None)

    def close(self) -> None:
        self.reconcile()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--insecure", action="store_true")
    args = parser.parse_args(argv)
    # httpx logs every poll of the Runtime API at INFO, ten lines a second.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    preload()
    print(f"warm executor ready in {time.monotonic() - started:.1f} s (pid {os.getpid()})", flush=True)

    from flwr.supercore.constant import ExecutorType
    from flwr.supercore.superexec import run_superexec as superexec_module

    executor = ForkExecutor()
    # flwr picks its executor from a closed list (subprocess, kubernetes); its loop, retries and
    # sign-off are what we want, so only the executor is swapped in.
    superexec_module.get_executor = lambda *a, **k: executor
    superexec_module.run_superexec(
        runtime_api_address=args.runtime_api_address,
        insecure=args.insecure,
        parent_pid=None,
        executor_type=ExecutorType.SUBPROCESS,
    )


if __name__ == "__main__":
    main()
