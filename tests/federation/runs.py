"""Federated runs made directly in the database, for the tests of how a run is followed."""

from federation.models import FederatedRun


def run_over(*hospitals, status, **fields) -> FederatedRun:
    """A run over `hospitals` in `status`, as the federation's services would have left it."""
    run = FederatedRun.objects.create(status=status, **fields)
    run.hospitals.set(hospitals)
    return run
