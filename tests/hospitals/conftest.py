"""Helpers for the hospitals API tests: a client for any person of the `world` fixture by name."""

import pytest


@pytest.fixture
def client_as(world, api):
    """client_as("doctor_a") is an API client signed in as world.doctor_a; "anonymous" is signed out."""

    def make(who):
        return api() if who == "anonymous" else api(getattr(world, who))

    return make


def url(*parts):
    return "/api/v1/" + "/".join(str(p).strip("/") for p in parts) + "/"
