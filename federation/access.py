"""Who may see a federated run, and which of its figures.

The platform operator (superuser) and the admins of the hospitals that take part in a run may watch it;
anyone else gets the same 404 whether the run exists or not.

A run's per-site figures (a node's case count, local loss and accuracy, timings, the text of its errors)
describe one hospital's data and infrastructure, so a hospital admin sees the run's global figures and
only their own hospital's node; the other hospitals appear as a count. The operator sees everything.
The API, the run page and the live socket all pass through `run_view` / `event_view`, so what a watcher
can read does not depend on how they read it.
"""

from django.http import Http404

from federation.models import FederatedRun, RunStatus
from hospitals.models import Membership, Role

# What an admin reads instead of a failure reason, which may quote another hospital's node or its errors.
WITHHELD_REASONS = {
    RunStatus.FAILED: "The run failed before it finished. The platform operator has the details.",
    RunStatus.STOPPED: "The run was stopped before it finished. The platform operator has the details.",
}
# Entries of a node's dropout that identify it or quote it; what is left says only when it happened.
_DROPOUT_KEPT = ("round", "phase")
# Live events that carry nothing of a site.
_PLAIN_EVENTS = {"status", "round_started", "promoted"}


def _admin_memberships(user):
    return Membership.objects.filter(user=user, role=Role.ADMIN)


def _withheld_reason(status) -> str:
    return WITHHELD_REASONS.get(status, WITHHELD_REASONS[RunStatus.FAILED])


def visible_runs(user):
    runs = FederatedRun.objects.all()
    if user is None or not user.is_authenticated:
        return runs.none()
    if user.is_superuser:
        return runs
    admin_of = _admin_memberships(user).values("hospital_id")
    return runs.filter(hospitals__in=admin_of).distinct()


def access_run(user, run_id) -> FederatedRun:
    try:
        return visible_runs(user).get(pk=int(run_id))
    except (FederatedRun.DoesNotExist, ValueError, TypeError):
        raise Http404("No such federated run") from None


def own_sites(user) -> frozenset[str] | None:
    """Slugs of the hospitals whose per-site figures the user may read in any run; None for all of them."""
    if user is None or not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return None
    return frozenset(_admin_memberships(user).values_list("hospital__slug", flat=True))


def _dropouts_view(entries, own) -> list[dict]:
    return [entry if entry.get("hospital") in own
            else {**{key: entry[key] for key in _DROPOUT_KEPT if key in entry}, "other_hospital": True}
            for entry in entries or []]


def round_view(payload: dict, own: frozenset[str] | None) -> dict:
    """A round (API row or live event) as a watcher who may read the figures of `own` sees it."""
    if own is None:
        return payload
    payload = dict(payload)
    if "nodes" in payload:
        nodes = payload["nodes"] or []
        payload["nodes"] = [node for node in nodes if node.get("hospital") in own]
        payload["other_hospitals"] = len({node.get("hospital") for node in nodes} - own)
        if payload["other_hospitals"] and "node_compute_s" in payload:
            # The slowest node's load and training time: one hospital's timing, which grows with its cases.
            payload["node_compute_s"] = None
    if "dropouts" in payload:
        payload["dropouts"] = _dropouts_view(payload["dropouts"], own)
    return payload


def _final_metrics_view(final: dict) -> dict:
    wire = final.get("wire")
    if not isinstance(wire, dict) or "rejected_replies" not in wire:
        return final
    # The refused replies quote a node's output; how many there were is a property of the whole run.
    return {**final, "wire": {**wire, "rejected_replies": len(wire["rejected_replies"] or [])}}


def run_view(data: dict, own: frozenset[str] | None) -> dict:
    """A serialized run as a watcher who may read the figures of `own` (None: everything) sees it."""
    if own is None:
        return data
    data = {**data, "rounds": [round_view(r, own) for r in data.get("rounds", [])],
            "dropouts": _dropouts_view(data.get("dropouts"), own),
            "final_metrics": _final_metrics_view(data.get("final_metrics") or {})}
    if data.get("failure_reason"):
        data["failure_reason"] = _withheld_reason(data.get("status"))
    return data


def event_view(event: dict, own: frozenset[str] | None) -> dict | None:
    """A live event of a run (federation.services.publish) as that watcher sees it; None: not for them."""
    if own is None:
        return event
    kind = event.get("kind")
    if kind in _PLAIN_EVENTS:
        return event
    if kind == "round":
        return round_view(event, own)
    if kind == "dropout":
        if event.get("hospital") in own:
            return event
        return {"kind": kind, "run": event.get("run"), **_dropouts_view([event], own)[0]}
    if kind == "finished":
        event = {**event, "final_metrics": _final_metrics_view(event["final_metrics"])} \
            if isinstance(event.get("final_metrics"), dict) else event
        if event.get("reason"):
            event = {**event, "reason": _withheld_reason(event.get("status"))}
        return event
    # A kind this module does not know may carry a site's figures: admins get it once it is listed here.
    return None
