"""Liveness and readiness, for the hospital's load balancer and IT staff.

- ``/healthz`` (liveness): the process answers. No database, cache or network: a database outage must not
  make an orchestrator restart every web process, which would not bring the database back.
- ``/readyz`` (readiness): whether this process can serve: the database, the cache and channel layer, the
  Celery broker, the registered models, the master key (and that it wraps every hospital's data key) and
  the PHI columns' key, each checked with a short timeout. 200 when every check passes, 503 otherwise, so
  the load balancer sends no user to a process that would fail them.

Neither asks anyone to sign in (load balancers do not), so the answers reveal nothing a stranger could
use: no hostnames, URLs, paths or library versions, and never an exception's message (a connection
error can carry a URL with its password). A failing check names the exception's type and a fixed
sentence; the full error goes to the log, which only IT staff read.
"""

import asyncio
import logging
import uuid
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from diagnostics import registry
from diagnostics.ml import export
from diagnostics.models.registry import ModelStatus, ModelTask, ModelVersion

log = logging.getLogger(__name__)

_PROBE_METHODS = ("GET", "HEAD")


class CheckFailed(Exception):
    """A check that ran without an exception but found something wrong; ``code`` names what."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


def _wrong_method():
    response = JsonResponse({"error": "method_not_allowed",
                             "detail": "Health endpoints answer GET (or HEAD) only."}, status=405)
    response["Allow"] = ", ".join(_PROBE_METHODS)
    return response


@never_cache
def liveness(request):
    if request.method not in _PROBE_METHODS:
        return _wrong_method()
    return JsonResponse({"status": "ok"})


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_cache_and_channel_layer() -> dict:
    # A random key and value: two processes probing at once must not read each other's answer as theirs.
    key, value = f"neurofed:readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=settings.SERVICE_TIMEOUT_S * 2)
    if cache.get(key) != value:
        raise CheckFailed("cache_mismatch", "The cache did not give back the value just stored in it.")
    cache.delete(key)
    async_to_sync(_channel_layer_round_trip)()
    return {}


async def _channel_layer_round_trip() -> None:
    """Send a message to a fresh channel and read it back: what a scan's status push relies on.

    A plain channel name, not one from ``new_channel()``: those are process-local and tie the layer's
    receive loop to one event loop, which a sync view's ``async_to_sync`` does not keep.
    """
    layer = get_channel_layer()
    channel = f"neurofed.readyz.{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    async with asyncio.timeout(settings.SERVICE_TIMEOUT_S):
        await layer.send(channel, {"type": "readyz.probe", "token": token})
        message = await layer.receive(channel)
    if message.get("token") != token:
        raise CheckFailed("channel_layer_mismatch", "The channel layer did not deliver the message just sent.")


def check_broker() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"status": "not used", "detail": "Embedded mode: analyses run in the web process, with no broker."}
    from neurofed.celery import app

    # One attempt, no sleeping between retries: a probe that answers late is as bad as one that fails.
    timeouts = {"socket_connect_timeout": settings.SERVICE_TIMEOUT_S, "socket_timeout": settings.SERVICE_TIMEOUT_S}
    with app.connection_for_write(transport_options=timeouts, connect_timeout=settings.SERVICE_TIMEOUT_S) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                 timeout=settings.SERVICE_TIMEOUT_S)
    return {}


def missing_artifacts(version: ModelVersion) -> list[str]:
    """Names of the version's bundle files that are absent or empty; existence and size only.

    The checksum is the worker's to verify, before it loads a model: hashing megabytes of weights on
    every probe would make the probe the heaviest request this process serves.
    """
    return _missing_files(registry.resolve_artifact_path(version.artifact_path))


def _missing_files(bundle: Path) -> list[str]:
    try:
        files = export.bundle_files(bundle)
    except (OSError, ValueError):
        return [bundle.name]
    return [path.name for path in files if not path.is_file() or path.stat().st_size == 0]


def check_models() -> dict:
    # Read-only: unlike registry.active_model_version, a probe never registers the baseline bundles; the
    # worker does that when it first loads a model. So a task the registry has never held a version of is
    # served by its committed bundle once a worker runs: a fresh installation is ready before its worker
    # (perhaps on another host) has started, and uploads wait in the queue for it.
    active = {v.task: v for v in ModelVersion.objects.filter(status=ModelStatus.ACTIVE)}
    registered = set(ModelVersion.objects.values_list("task", flat=True).distinct())
    versions = {}
    for task in (ModelTask.CLASSIFY, ModelTask.SEGMENT):
        version = active.get(task)
        if version is None and task not in registered:
            baseline = Path(settings.MODEL_DIR) / registry.BUNDLE_NAMES[task]
            if baseline.is_file():
                if _missing_files(baseline):
                    raise CheckFailed("model_files_missing", f"The committed {task} model's files are missing or empty.")
                versions[task] = "baseline, registered by the worker's first analysis"
                continue
        if version is None:
            raise CheckFailed("no_active_model", f"No {task} model is active; promote one in the model registry "
                                                 "(manage.py promote_model).")
        if missing_artifacts(version):
            raise CheckFailed("model_files_missing",
                              f"The active {task} model {version.version}'s files are missing or empty.")
        versions[task] = version.version
    return {"versions": versions}


def check_input_gate() -> dict:
    """The input gate's file loads: without it every upload is refused (diagnostics/ml/gate.py)."""
    from diagnostics import services

    try:
        services.input_gate()
    except services.InputGateUnavailable:
        raise CheckFailed("input_gate_missing", "The input gate's file is missing or unreadable; uploads are "
                                                "refused until it is back (NEUROFED_INPUT_GATE).") from None
    return {}


def check_master_key() -> dict:
    """The master keys decode (hospitals.checks says the same to `manage.py check`): without them no scan can be
    stored or read, and no hospital opened."""
    from django.core.exceptions import ImproperlyConfigured

    from hospitals import keys

    try:
        keys.known_master_keys()
    except ImproperlyConfigured as problem:
        log.error("readiness: %s", problem)  # names the variable and the decoded length, never the key
        raise CheckFailed("master_key_unusable", "The master key (NEUROFED_MASTER_KEY or its _FILE) cannot be "
                                                 "used; the log says why.") from None
    # A key that decodes but wraps none of the hospitals' data keys (a restore with another key set, a
    # secret store mix-up) would fail every upload and scan read in every hospital. A deleted hospital's
    # key is gone by design.
    unwrappable = keys.hospitals_without_their_master_key()
    if unwrappable:
        log.error("readiness: no configured master key wraps the data keys of %s",
                  keys.named_with_their_master_keys(unwrappable))
        raise CheckFailed("master_key_wrong", "The configured master keys do not wrap every hospital's data key; "
                                              "the log names the hospitals and the key each needs.")
    return {}


def check_field_key() -> dict:
    """The PHI columns' key (FIELD_ENCRYPTION_KEY) opens what is stored. The field library reads a value it
    cannot decrypt as the ciphertext itself, so a wrong key would show ciphertext for names, fail pages with
    a date of birth, and store the ciphertext encrypted again on the next edit, for good."""
    from cryptography.fernet import InvalidToken
    from encrypted_model_fields.fields import decrypt_str

    from hospitals.models import Patient

    # The newest record and the oldest: a key list that lost the older key (a rotation's previous one)
    # opens what was written since, not what was written before. Two plain queries: the embedded mode's
    # SQLite takes no parenthesised SELECT in a UNION.
    stored = []
    with connection.cursor() as cursor:
        for order in ("DESC", "ASC"):
            cursor.execute(f"SELECT full_name FROM {Patient._meta.db_table} ORDER BY created_at {order} LIMIT 1")
            stored.extend(cursor.fetchall())
    for (value,) in stored:
        try:
            decrypt_str(value)
        except InvalidToken:
            raise CheckFailed("field_key_wrong", "FIELD_ENCRYPTION_KEY does not open the stored patient records; "
                                                 "set the key they were written with.") from None
    return {}


CHECKS = {
    "database": (check_database, "The database did not answer."),
    "cache_and_channel_layer": (check_cache_and_channel_layer, "Redis (cache or channel layer) did not answer."),
    "broker": (check_broker, "The task broker did not answer."),
    "models": (check_models, "The model registry could not be read."),
    "input_gate": (check_input_gate, "The input gate could not be read."),
    "master_key": (check_master_key, "The master key could not be read."),
    "field_key": (check_field_key, "The patient records could not be read."),
}


def run_check(name: str) -> dict:
    check, failure = CHECKS[name]
    try:
        result = check()
    except CheckFailed as problem:
        log.warning("readiness: %s failing: %s", name, problem.code)
        return {"status": "failing", "error": problem.code, "detail": problem.detail}
    # Any error at all means "not ready"; its message stays in the log (see the module's docstring).
    except Exception as error:  # noqa: BLE001
        log.warning("readiness: %s failing: %s: %s", name, type(error).__name__, error)
        return {"status": "failing", "error": type(error).__name__, "detail": failure}
    return {"status": "ok", **result}


@never_cache
def readiness(request):
    if request.method not in _PROBE_METHODS:
        return _wrong_method()
    checks = {name: run_check(name) for name in CHECKS}
    ready = all(check["status"] != "failing" for check in checks.values())
    return JsonResponse({"status": "ok" if ready else "failing", "checks": checks}, status=200 if ready else 503)


PROBES = {"/healthz": liveness, "/readyz": readiness}


class ProbeMiddleware:
    """Answers the two probes first in the middleware stack, before anything reads the Host header or
    redirects to HTTPS.

    A load balancer probes each web process by its own address, over plain HTTP, and counts a 400 or a
    redirect as a failure: with ALLOWED_HOSTS naming only the public host, and HTTPS enforced, every
    probe would fail. The probes' answers do not depend on the host and carry no session or patient
    data, so neither check protects anything here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        return probe(request) if probe is not None else self.get_response(request)

