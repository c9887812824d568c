"""The Dockerfile builds a working tower: no Docker engine runs here, so its steps are replayed.

The image holds only what the Dockerfile COPYs, installed with pip as a package (not the checkout).
This builds the wheel from exactly those paths, installs it apart from the checkout, and runs the
image's command line from an empty working directory, with the image's environment: a file left out
of the build context or of the package data would break the image and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    """The arguments of every `name` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", joined, re.MULTILINE)]


def test_the_image_runs_as_a_user_and_exposes_the_dashboard_and_the_metrics() -> None:
    users = _instructions("USER")
    assert users and users[-1] not in ("root", "0"), "the tower must not run as root"
    assert set(" ".join(_instructions("EXPOSE")).split()) == {"8501", "9464"}
    (health,) = _instructions("HEALTHCHECK")
    assert "127.0.0.1:9464/metrics" in health
    (cmd,) = _instructions("CMD")
    assert '"--host", "0.0.0.0"' in cmd, "in a container both servers must listen beyond loopback"


@pytest.fixture(scope="module")
def installed_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the image installs it: a wheel built from the COPY'd paths only, unpacked apart."""
    work = tmp_path_factory.mktemp("image")
    context = work / "context"
    context.mkdir()
    for args in _instructions("COPY"):
        *sources, _destination = args.split()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, context / source)
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels),
                    str(context)], check=True, cwd=work)
    (wheel,) = wheels.glob("hitl_tower-*.whl")
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, cwd=work)
    return site


def _image_env(site: Path, data: Path) -> dict[str, str]:
    """The image's environment (its ENV lines), with the installed package ahead of the checkout."""
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("HITL_TOWER_CONFIG", None)
    for line in _instructions("ENV"):
        for name, value in re.findall(r"(\w+)=(\S+)", line):
            env[name] = value.replace("/opt/hitl-tower", str(site.parent / "context")).replace("/data", str(data))
    return env


# The console script `hitl-tower`, run by the interpreter that sees the installed package first.
HITL_TOWER = [sys.executable, "-c", "import sys; from collectors.cli import main; sys.argv[0] = 'hitl-tower'; main()"]


def test_the_installed_image_builds_its_demo_store_and_finds_its_dashboard(installed_image: Path,
                                                                          tmp_path: Path) -> None:
    env = _image_env(installed_image, tmp_path)
    assert env["HITL_TOWER_DB_URL"] == f"sqlite:///{tmp_path}/hitl-demo.db"
    where = subprocess.run(
        [sys.executable, "-c", ("import collectors, app; from collectors.demo_run import dashboard_entrypoint; "
                                "print(collectors.__file__); print(app.__file__); print(dashboard_entrypoint())")],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(installed_image)) for path in where), where  # not the checkout
    assert Path(where[2]).is_file() and (Path(where[2]).parent / "views").is_dir()
    # The image's CMD without the servers: the store lands in the working directory (/data).
    demo = subprocess.run([*HITL_TOWER, "demo", "--no-serve"], check=False, env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "events stored (0 duplicate)" in demo.stdout and (tmp_path / "hitl-demo.db").is_file()
    # `docker exec ... hitl-tower verify` reads the store HITL_TOWER_DB_URL names.
    verify = subprocess.run([*HITL_TOWER, "verify"], check=False, env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and verify.stdout.startswith("OK:"), verify.stdout + verify.stderr
