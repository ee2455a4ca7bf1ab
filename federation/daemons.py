"""Command lines and environments of the Flower daemons: the SuperLink and one SuperNode per hospital.

Facts of flwr 1.42 this relies on (checked against the installed source):
- the daemons start `flower-superexec`, `flwr-serverapp` and `flwr-clientapp` by bare name, so the
  virtualenv's bin must be on their PATH, and those processes inherit the daemon's environment, which is
  how the app processes find the project (PYTHONPATH, DJANGO_SETTINGS_MODULE, DATABASE_URL...);
- the CLI and the daemons keep state under FLWR_HOME; a fresh one without a config.toml silently means a
  local simulation SuperLink, so every home we use is written with an explicit connection;
- two SuperNodes on one host each need their own Runtime API port and, since each installs the app
  bundle into its home, their own FLWR_HOME.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import urllib.request

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = Path(__file__).resolve().parent / "flower_app"
VENV_BIN = Path(sys.executable).parent
CONNECTION_NAME = "neurofed"

# A node's SuperExec polls its node's Runtime API for new tasks once a second by default; each round
# has two phases per node, so that alone is a visible share of a small round. The node's state is
# its own, so polling it at 0.1 s costs nothing shared. The SuperLink's SuperExec keeps the default:
# its polls are queries on the SuperLink's SQLite state, which heartbeats and replies also need.
NODE_TASK_POLL_INTERVAL_S = "0.1"


_handed_out: set[int] = set()


def free_port(preferred: range | None = None) -> int:
    """A TCP port nobody listens on now: the first free one of `preferred`, else any the OS gives.

    A port handed out once is not handed out again by this process: the daemon it was meant for may
    not have bound it yet.
    """
    for port in preferred or ():
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def daemon_env(flwr_home: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["FLWR_HOME"] = str(flwr_home)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    env.setdefault("DJANGO_SETTINGS_MODULE", "neurofed.settings")
    # Keep the app processes' TensorFlow quiet and off a GPU another worker may own.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra or {})
    return env


@dataclass
class Tls:
    """Certificates of a federation with TLS: a CA, and the SuperLink's certificate and key."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def from_dir(cls, folder: Path) -> "Tls":
        # Absolute: the daemons run in the project's folder, not where the operator named the folder.
        folder = Path(folder).resolve()
        return cls(ca=folder / "ca.crt", cert=folder / "server.pem", key=folder / "server.key")

    def missing(self) -> list[Path]:
        return [path for path in (self.ca, self.cert, self.key) if path is not None and not path.is_file()]


def write_cli_config(flwr_home: Path, address: str, tls: Tls | None = None) -> Path:
    """config.toml naming our SuperLink as the default connection of the `flwr` CLI in this home."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    security = f'root-certificates = "{tls.ca}"' if tls else "insecure = true"
    path = flwr_home / "config.toml"
    path.write_text(
        f'[superlink]\ndefault = "{CONNECTION_NAME}"\n\n'
        f'[superlink.{CONNECTION_NAME}]\naddress = "{address}"\n{security}\n'
    )
    return path


def superlink_command(*, host: str, port: int, database: Path, tls: Tls | None = None,
                      node_auth: bool = False) -> list[str]:
    command = [
        str(VENV_BIN / "flower-superlink"), "--host", host, "--port", str(port), "--database", str(database),
        # Without it every run tries `uv sync`, which needs the network; the venv already has everything.
        "--disable-runtime-dependency-installation",
    ]
    if tls:
        command += ["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]
    else:
        command.append("--insecure")
    if node_auth:
        command.append("--enable-supernode-auth")
    return command


def supernode_command(*, superlink: str, runtime_port: int, hospital_slug: str, tls: Tls | None = None,
                      auth_key: Path | None = None, warm: bool = True) -> list[str]:
    # Warm nodes also run through our launcher, which shortens the SuperNode's hard-coded 3 s idle poll
    # (federation/supernode_launcher.py); `warm=False` is Flower's stock SuperNode, for comparison.
    launcher = [sys.executable, "-m", "federation.supernode_launcher"] if warm else [str(VENV_BIN / "flower-supernode")]
    command = [
        *launcher, "--superlink", superlink,
        "--host", "127.0.0.1", "--port", str(runtime_port),
        # The node's identity is set here, by whoever runs the node next to the hospital's data, never
        # by the server: the ClientApp reads only this hospital's cases.
        "--node-config", f'hospital="{hospital_slug}"',
        # `process`: the node does not spawn a cold `flwr-clientapp` per message; our warm executor
        # (federation/warm_executor.py) takes the tasks instead. `subprocess` is Flower's default.
        "--isolation", "process" if warm else "subprocess",
    ]
    command += ["--root-certificates", str(tls.ca)] if tls else ["--insecure"]
    if auth_key:
        command += ["--auth-supernode-private-key", str(auth_key)]
    return command


def warm_executor_command(*, runtime_port: int) -> list[str]:
    # The Runtime API listens on 127.0.0.1 only: node and executor always run side by side.
    return [sys.executable, "-m", "federation.warm_executor", "--runtime-api-address",
            f"127.0.0.1:{runtime_port}", "--insecure"]


@dataclass
class Daemon:
    """A started process with its log file; stop() signs it off with SIGTERM, then kills it."""

    name: str
    process: subprocess.Popen
    log_path: Path
    children: list = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        # Flower's app processes may leave the daemon's process group; find them before it goes.
        strays = [pid for proc in [self.process, *self.children] for pid in _descendants(proc.pid)]
        for proc in [self.process, *self.children]:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in [self.process, *self.children]:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        _kill_pids(strays)

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would: no sign-off reaches the SuperLink."""
        _kill_pids([pid for proc in [self.process, *self.children] for pid in _descendants(proc.pid)])
        for proc in [self.process, *self.children]:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
        for proc in [self.process, *self.children]:
            proc.wait(10)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    # Each daemon leads its own process group, so its superexec and app processes go with it.
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def spawn(name: str, command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - the child owns it from here
    try:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
                                start_new_session=True)
    finally:
        log.close()


def wait_for_superlink(address: str, timeout: float = 60, tls: Tls | None = None) -> None:
    """Block until the SuperLink answers on /health (plain HTTP or HTTPS with our CA)."""
    import ssl

    scheme = "https" if tls else "http"
    context = ssl.create_default_context(cafile=str(tls.ca)) if tls else None
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{scheme}://{address}/health", timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last_error = exc
        time.sleep(0.3)
    raise TimeoutError(f"SuperLink at {address} did not answer /health within {timeout:.0f} s: {last_error}")


def start_superlink(home: Path, *, port: int, host: str = "127.0.0.1", tls: Tls | None = None,
                    node_auth: bool = False, env_extra: dict | None = None, wait: bool = True,
                    listen_all: bool = False) -> Daemon:
    """Start a SuperLink whose state (runs, nodes) lives in home/state.db, so a restart keeps its runs.

    `listen_all`: listen on 0.0.0.0 (conf.superlink_listen_all). Nodes still connect by `host`; the
    SuperLink's own connections go to 127.0.0.1 (Flower's SuperExec does the same).
    """
    address = f"127.0.0.1:{port}" if listen_all else f"{host}:{port}"
    flwr_home = home / "superlink"
    write_cli_config(flwr_home, address, tls)
    command = superlink_command(host=WILDCARD_HOST if listen_all else host, port=port, database=home / "state.db",
                                tls=tls, node_auth=node_auth)
    env = daemon_env(flwr_home, env_extra)
    if node_auth:
        # Its ServerApps then admit only enrolled nodes, each for its own hospital (server_app.admission_problem).
        env["FEDERATION_NODE_AUTH"] = "1"
    process = spawn("superlink", command, env, home / "logs" / "superlink.log")
    daemon = Daemon("superlink", process, home / "logs" / "superlink.log")
    if wait:
        try:
            wait_for_superlink(address, tls=tls)
        except TimeoutError:
            daemon.stop()
            raise
    return daemon


def start_node(home: Path, *, hospital_slug: str, superlink: str, runtime_port: int | None = None,
               tls: Tls | None = None, auth_key: Path | None = None, env_extra: dict | None = None,
               warm: bool = True, name: str | None = None) -> Daemon:
    """Start one hospital's SuperNode and the warm executor that runs its ClientApp tasks.

    `warm=False` leaves Flower's default (a fresh flwr-clientapp process per message), for comparison.
    `name` (the hospital's slug by default) names its folder and logs.
    """
    name = name or hospital_slug
    runtime_port = runtime_port or free_port()
    flwr_home = home / "nodes" / name
    flwr_home.mkdir(parents=True, exist_ok=True)
    env = daemon_env(flwr_home, {"FLWR_SUPEREXEC_TASK_POLL_INTERVAL": NODE_TASK_POLL_INTERVAL_S, **(env_extra or {})})
    log_path = home / "logs" / f"node-{name}.log"
    node = spawn(f"node-{name}",
                 supernode_command(superlink=superlink, runtime_port=runtime_port, hospital_slug=hospital_slug,
                                   tls=tls, auth_key=auth_key, warm=warm), env, log_path)
    children = []
    if warm:
        try:
            children.append(spawn(f"executor-{name}", warm_executor_command(runtime_port=runtime_port), env,
                                  home / "logs" / f"executor-{name}.log"))
        except BaseException:
            # The caller gets no Daemon to stop, and a node without its executor would take the run's
            # tasks and run none of them: the node goes with the failure.
            Daemon(f"node-{name}", node, log_path).stop()
            raise
    return Daemon(f"node-{name}", node, log_path, children=children)


WILDCARD_HOST = "0.0.0.0"


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def supervise(daemons_: list[Daemon]) -> int:
    """Wait in the foreground until one daemon exits or we are told to stop; then stop them all."""
    stopping = []

    def _stop(signum, frame):
        stopping.append(signum)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            dead = [d for d in daemons_ if not d.alive()]
            if dead:
                print(f"{dead[0].name} exited with {dead[0].process.returncode}; stopping the others "
                      f"(log: {dead[0].log_path})", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        for daemon in reversed(daemons_):
            daemon.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
