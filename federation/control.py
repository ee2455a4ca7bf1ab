"""The platform's side of Flower's Control API: submit a run, read its status, stop it.

Submitting uses the `flwr run` CLI, which builds the app bundle from federation/flower_app and sends it;
status and stop go through flwr's own Control API client in-process (a CLI start-up per poll would cost
a second of CPU every few seconds for the whole run).
"""

import contextlib
import datetime
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from federation import daemons


class ControlError(RuntimeError):
    pass


@dataclass
class FlowerRunState:
    status: str  # pending, starting, running, finished
    sub_status: str  # completed, failed, stopped, or "" while not finished
    details: str
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def cli_home(federation_home: Path) -> Path:
    return federation_home / "superlink"


def _json_answer(stdout: str) -> dict:
    """The JSON object `flwr ... --format json` prints, wherever it is among other output."""
    decoder = json.JSONDecoder()
    for start in (i for i, c in enumerate(stdout) if c == "{"):
        try:
            answer, _ = decoder.raw_decode(stdout[start:])
        except ValueError:
            continue
        if isinstance(answer, dict) and "success" in answer:
            return answer
    return {}


SUBMIT_ATTEMPTS = 3
SUBMIT_TIMEOUT_S = 180  # one `flwr run`: it builds and sends the app bundle


def submit_run(federation_home: Path, platform_run_id: int, *, since: datetime.datetime | None = None,
               attempts: int = SUBMIT_ATTEMPTS) -> str:
    """Start a run of our Flower app on the SuperLink; returns Flower's run id (a uint64, as text).

    `flwr run` has been seen to exit 0 with no output on a loaded machine; before trying again, the
    SuperLink is asked whether the run exists after all, so a platform run is never started twice.
    `since`: the platform run's creation, so that a Flower run of an earlier database with the same
    number is not taken for it (find_submitted).
    """
    error = None
    for _ in range(attempts):
        try:
            return _submit_once(federation_home, platform_run_id)
        except (ControlError, subprocess.TimeoutExpired) as exc:
            error = exc
            existing = find_submitted(federation_home, platform_run_id, since=since)
            if existing:
                return existing
    raise error


# How far the SuperLink's clock may lag the platform's when a run's submission is matched to its record.
CLOCK_SKEW = datetime.timedelta(minutes=1)


def find_submitted(federation_home: Path, platform_run_id: int, *, since: datetime.datetime | None = None,
                   must_answer: bool = False) -> str:
    """Flower's id of a run the SuperLink has for this platform run, or "".

    `since`: the platform run's creation. A SuperLink's state outlives a platform database that was
    reset (the demo's, a test's), whose run ids start again at 1: a Flower run submitted before the
    platform run existed belongs to another run of the same number.

    `must_answer`: an unreachable SuperLink raises instead of answering "" (it may hold the run all the same).
    """
    from flwr.proto.control_pb2 import ListRunsRequest

    try:
        with _control_client(federation_home) as client:
            response = client.ListRuns(ListRunsRequest())
    except Exception:  # noqa: BLE001 - unreachable: nothing was submitted that we can see
        if must_answer:
            raise
        return ""
    for run_id, run in response.run_dict.items():
        value = run.override_config.get("platform-run-id")
        if value is not None and value.WhichOneof("scalar") and \
                int(getattr(value, value.WhichOneof("scalar"))) == int(platform_run_id):
            if since is not None and _submitted_before(run.pending_at, since - CLOCK_SKEW):
                continue
            return str(run_id)
    return ""


def _submitted_before(pending_at: str, moment: datetime.datetime) -> bool:
    try:
        submitted = datetime.datetime.fromisoformat(pending_at)
    except ValueError:
        return False  # no time to go by: the platform run id alone decides, as without `since`
    if submitted.tzinfo is None:
        submitted = submitted.replace(tzinfo=datetime.timezone.utc)
    return submitted < moment


def _submit_once(federation_home: Path, platform_run_id: int, timeout: float = SUBMIT_TIMEOUT_S) -> str:
    env = daemons.daemon_env(cli_home(federation_home))
    command = [str(daemons.VENV_BIN / "flwr"), "run", str(daemons.APP_DIR), daemons.CONNECTION_NAME,
               "--format", "json", "--run-config", f"platform-run-id={int(platform_run_id)}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(daemons.REPO_ROOT))
    answer = _json_answer(done.stdout)
    if done.returncode != 0 or not answer.get("success"):
        # "exit 0" beside "failed" read as a contradiction: say which of the two ways it failed.
        how = f"exited with status {done.returncode}" if done.returncode else "ended without starting the run"
        detail = answer.get("error-message") or done.stderr.strip()[-500:] or done.stdout[-800:] or "no output"
        raise ControlError(f"The SuperLink did not take the run: `flwr run` {how}. {detail}")
    return str(answer["run-id"])


@contextlib.contextmanager
def _control_client(federation_home: Path):
    from flwr.cli.flower_config import read_superlink_connection
    from flwr.cli.utils import init_http_client_from_connection

    previous = os.environ.get("FLWR_HOME")
    os.environ["FLWR_HOME"] = str(cli_home(federation_home))
    client = None
    try:
        # The CLI helpers print "Using SuperLink: ..." for people at a terminal; not once per poll here.
        with contextlib.redirect_stdout(io.StringIO()):
            client = init_http_client_from_connection(read_superlink_connection(daemons.CONNECTION_NAME))
        yield client
    finally:
        if client is not None:
            client.close()
        if previous is None:
            os.environ.pop("FLWR_HOME", None)
        else:
            os.environ["FLWR_HOME"] = previous


def run_state(federation_home: Path, flower_run_id: str) -> FlowerRunState:
    """The run's state on the SuperLink; raises OSError-like errors when the SuperLink is unreachable."""
    from flwr.proto.control_pb2 import ListRunsRequest

    with _control_client(federation_home) as client:
        response = client.ListRuns(ListRunsRequest(run_id=int(flower_run_id)))
    run = response.run_dict.get(int(flower_run_id))
    if run is None:
        raise ControlError(f"the SuperLink does not know run {flower_run_id}")
    return FlowerRunState(run.status.status, run.status.sub_status, run.status.details,
                          int(getattr(run, "bytes_sent", 0)), int(getattr(run, "bytes_recv", 0)))


def stop_run(federation_home: Path, flower_run_id: str) -> None:
    from flwr.proto.control_pb2 import StopRunRequest

    with _control_client(federation_home) as client:
        client.StopRun(StopRunRequest(run_id=int(flower_run_id)))


def _supernode(federation_home: Path, arguments: list[str], failure: str, options: tuple[str, ...] = ()) -> dict:
    """Run `flwr supernode <arguments>` against the SuperLink and return its JSON answer.

    Every way it can fail is a ControlError with a sentence for the operator: flwr missing, no answer
    in time (a timeout's own text is the whole command line), or a refusal with the SuperLink's reason.
    """
    env = daemons.daemon_env(cli_home(federation_home))
    command = [str(daemons.VENV_BIN / "flwr"), "supernode", *arguments, daemons.CONNECTION_NAME, "--format", "json",
               *options]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                              cwd=str(daemons.REPO_ROOT))
    except subprocess.TimeoutExpired as exc:
        raise ControlError(f"it did not answer within {exc.timeout:g} s; check that it is running and "
                           "reachable") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise ControlError(str(exc)) from None
    answer = _json_answer(done.stdout)
    if done.returncode != 0 or not answer.get("success"):
        raise ControlError(f"{failure}: "
                           f"{answer.get('error-message') or done.stderr.strip()[-500:] or done.stdout[-500:]}")
    return answer


def register_node(federation_home: Path, public_key: Path, name: str = "") -> str:
    """Register a node's public key with a SuperLink started with node authentication; returns its node id."""
    # Absolute: flwr runs in the project's folder, not the caller's.
    answer = _supernode(federation_home, ["register", str(Path(public_key).resolve())],
                        f"could not register {public_key.name}",
                        options=("--name", name) if name else ())
    return str(answer.get("node-id", ""))


def unregister_node(federation_home: Path, node_id: str) -> None:
    """Remove a node's key from the SuperLink: the node can no longer connect under it."""
    _supernode(federation_home, ["unregister", str(int(node_id))], f"could not unregister node {node_id}")


def online_nodes(federation_home: Path) -> list[str]:
    """Ids of the nodes the SuperLink sees online."""
    from flwr.proto.control_pb2 import ListNodesRequest

    with _control_client(federation_home) as client:
        response = client.ListNodes(ListNodesRequest())
    return [str(n.node_id) for n in response.nodes_info if n.status == "online"]
