"""Helpers for the hospitals tests: a client for any person of the `world` fixture by name, and master
keys configured as the environment would."""

import base64
import secrets

import pytest


@pytest.fixture
def client_as(world, api):
    """client_as("doctor_a") is an API client signed in as world.doctor_a; "anonymous" is signed out."""

    def make(who):
        return api() if who == "anonymous" else api(getattr(world, who))

    return make


def url(*parts):
    return "/api/v1/" + "/".join(str(p).strip("/") for p in parts) + "/"


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def master(settings):
    """use(current, previous=None) configures the master keys as the environment would."""

    def use(current, previous=None):
        settings.MASTER_KEY, settings.MASTER_KEY_FILE = current, ""
        settings.PREVIOUS_MASTER_KEY, settings.PREVIOUS_MASTER_KEY_FILE = previous or "", ""

    return use
