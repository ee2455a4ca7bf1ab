"""Settings refuse to run production without its secrets, and say so; development makes its own keys.

Each case imports the settings in a fresh interpreter, as a real start would, with a controlled
environment (no keys inherited from whoever runs the tests).
"""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
KEY_VARIABLES = (
    "NEUROFED_MASTER_KEY", "NEUROFED_MASTER_KEY_FILE", "NEUROFED_PREVIOUS_MASTER_KEY",
    "NEUROFED_PREVIOUS_MASTER_KEY_FILE", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG",
)
PRINT_SETTINGS = (
    "from django.conf import settings; "
    "print(settings.DEBUG, settings.MASTER_KEY_FILE or 'env', type(settings.FIELD_ENCRYPTION_KEY).__name__)"
)


def start(tmp_path, code=PRINT_SETTINGS, **env):
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    clean.update(DJANGO_SETTINGS_MODULE="neurofed.settings", NEUROFED_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=clean, timeout=60)


def production(**extra):
    return {
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "neurofed.example", **extra,
    }


def master_key():
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_production_refuses_to_start_without_a_master_key(tmp_path):
    result = start(tmp_path, **production())
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "NEUROFED_MASTER_KEY" in result.stderr
    assert not (tmp_path / "var" / "master.key").exists()  # no silent development key in production


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_its_other_secrets(tmp_path, missing):
    env = production(NEUROFED_MASTER_KEY=master_key())
    del env[missing]
    result = start(tmp_path, **env)
    assert result.returncode != 0 and missing in result.stderr


def test_production_starts_with_a_master_key_from_env_or_file(tmp_path):
    assert start(tmp_path, **production(NEUROFED_MASTER_KEY=master_key())).stdout.split() == ["False", "env", "str"]
    key_file = tmp_path / "master.key"
    key_file.write_text(master_key())
    result = start(tmp_path, **production(NEUROFED_MASTER_KEY_FILE=str(key_file)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == str(key_file)


def test_development_creates_a_git_ignored_master_key_once_and_says_so(tmp_path):
    first = start(tmp_path, DEBUG="1")
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "master.key"
    assert f"created development key {key_file}" in first.stderr
    assert len(base64.b64decode(key_file.read_text())) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text()
    second = start(tmp_path, DEBUG="1")
    assert "master.key" not in second.stderr and key_file.read_text() == key
    ignored = subprocess.run(["git", "check-ignore", "-q", "var/master.key"], cwd=ROOT)
    assert ignored.returncode == 0  # the default location never ends up in a commit


def test_field_encryption_keys_are_a_list_newest_first(tmp_path):
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    result = start(tmp_path, DEBUG="1", FIELD_ENCRYPTION_KEY=f"{new}, {old}")
    assert result.stdout.split()[2] == "list"


def test_a_field_key_that_is_no_fernet_key_is_named_at_start(tmp_path):
    result = start(tmp_path, DEBUG="1", FIELD_ENCRYPTION_KEY=f"{Fernet.generate_key().decode()},{secrets.token_hex(32)}")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY: key 2 is not a Fernet key (44 characters of URL-safe base64" in result.stderr


def deploy_check(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES and not k.startswith("EMAIL_")}
    clean.update(DJANGO_SETTINGS_MODULE="neurofed.settings", NEUROFED_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], capture_output=True, text=True, cwd=ROOT, env=clean,
        timeout=120,
    )


def test_deploy_check_warns_that_invitations_would_only_reach_the_log(tmp_path):
    console = {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    result = deploy_check(tmp_path, **production(NEUROFED_MASTER_KEY=master_key(), **console))
    assert "hospitals.W001" in result.stderr + result.stdout
    assert "invitations and password resets are not delivered" in result.stderr + result.stdout


def test_deploy_check_accepts_an_smtp_relay(tmp_path):
    smtp = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "smtp.neurofed.example",
            "EMAIL_PORT": "587", "EMAIL_USE_TLS": "1", "DEFAULT_FROM_EMAIL": "NeuroFed <neurofed@hospital.example>"}
    result = deploy_check(tmp_path, **production(NEUROFED_MASTER_KEY=master_key(), **smtp))
    for check in ("hospitals.W001", "hospitals.W002", "hospitals.W003"):
        assert check not in result.stderr + result.stdout, result.stderr
    # Configured as README says, nothing to read past: a warning on every release would teach IT staff to
    # skip the one that matters. HSTS preload is the hospital's choice, off unless SECURE_HSTS_PRELOAD=1.
    assert "System check identified no issues (1 silenced)." in result.stderr + result.stdout, result.stderr


def test_hsts_preload_is_the_hospitals_choice(tmp_path):
    code = "from django.conf import settings; print(settings.SECURE_HSTS_PRELOAD, settings.SILENCED_SYSTEM_CHECKS)"
    assert start(tmp_path, code, **production(NEUROFED_MASTER_KEY=master_key())).stdout.split() == [
        "False", "['security.W021']"]
    assert start(tmp_path, code, **production(NEUROFED_MASTER_KEY=master_key(), SECURE_HSTS_PRELOAD="1")
                 ).stdout.split() == ["True", "[]"]


def test_deploy_check_warns_that_production_without_mail_settings_mails_localhost(tmp_path, monkeypatch):
    # DEBUG off with no EMAIL_* at all: SMTP is the default backend, to a relay nobody named.
    for name in ("EMAIL_BACKEND", "EMAIL_HOST", "DEFAULT_FROM_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    result = deploy_check(tmp_path, **production(NEUROFED_MASTER_KEY=master_key()))
    output = result.stderr + result.stdout
    assert "hospitals.W002" in output and "sent to an SMTP server on localhost:25" in output
    assert "hospitals.W003" in output


def test_a_master_key_of_the_wrong_length_stops_every_check_and_migrate(tmp_path):
    # `openssl rand -hex 32` decodes as base64 to 48 bytes: the process started and failed only at the first
    # new hospital or upload. Every management command that runs the checks (migrate among them) now stops.
    result = deploy_check(tmp_path, **production(NEUROFED_MASTER_KEY=secrets.token_hex(32)))
    output = result.stderr + result.stdout
    assert result.returncode != 0 and "hospitals.E001" in output
    assert "NEUROFED_MASTER_KEY must decode to 32 bytes, not 48" in output
    assert deploy_check(tmp_path, **production(NEUROFED_MASTER_KEY=master_key())).returncode == 0


PRINT_PROXY_HEADER = "from django.conf import settings; print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"


@pytest.mark.parametrize(("proxies", "trusted"), [("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_x_forwarded_proto_is_believed_only_behind_a_proxy(tmp_path, proxies, trusted):
    # Without a proxy that overwrites it, any client could send "X-Forwarded-Proto: https" over plain HTTP
    # and be served as if its connection were encrypted, the redirect to HTTPS skipped.
    result = start(tmp_path, PRINT_PROXY_HEADER, **production(NEUROFED_MASTER_KEY=master_key(),
                                                              TRUSTED_PROXY_COUNT=proxies))
    assert result.stdout.strip() == trusted, result.stderr


def test_a_variable_left_empty_counts_as_unset(tmp_path):
    """An env file's optional lines are often left blank: an empty broker URL would run every analysis in
    the web process, an empty MEDIA_ROOT store scans in the working directory."""
    code = ("from django.conf import settings; print(settings.CELERY_BROKER_URL, settings.MEDIA_ROOT, "
            "settings.LOG_LEVEL, settings.DATABASES['default']['CONN_MAX_AGE'])")
    result = start(tmp_path, code=code, DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/3", CELERY_BROKER_URL="",
                   MEDIA_ROOT=" ", LOG_LEVEL="", DATABASE_URL="postgres://postgres@127.0.0.1:5432/neurofed")
    assert result.returncode == 0, result.stderr
    broker, media, level, conn_max_age = result.stdout.split()
    assert broker == "redis://127.0.0.1:6379/3" and media == str(tmp_path / "var" / "media")
    # Under daphne, a persistent connection is never closed: one per request unless a deployment says so.
    assert level == "INFO" and conn_max_age == "0"


@pytest.mark.parametrize("given, accepted", [("info", True), ("Warning", True), ("verbose", False)])
def test_the_log_level_is_read_as_celery_reads_it_and_a_wrong_one_is_named(tmp_path, given, accepted):
    result = start(tmp_path, code="from django.conf import settings; print(settings.LOG_LEVEL)", DEBUG="1",
                   LOG_LEVEL=given)
    if accepted:
        assert result.returncode == 0 and result.stdout.strip() == given.upper(), result.stderr
    else:
        assert result.returncode != 0 and "LOG_LEVEL must be DEBUG, INFO" in result.stderr
