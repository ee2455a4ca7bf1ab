import subprocess
import sys
import sysconfig
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_import_platform_is_the_standard_library_module():
    import platform

    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.python_version)
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_neurofed_is_the_platform_folder():
    import neurofed.settings

    assert Path(neurofed.settings.__file__).resolve().parent == ROOT / "platform"


def test_platform_module_in_a_fresh_interpreter():
    out = subprocess.run(
        [sys.executable, "-c", "import neurofed.settings, platform; print(platform.system())"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    assert out.stdout.strip() == "Linux"


def test_migrations_are_complete(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
