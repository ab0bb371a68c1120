"""The Procfile, docker-compose.yml and the README's configuration table agree."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOT_CONFIGURATION = {"PATH"}  # read by the runner only to find the venv's programs
PROCESSES = {"gateway", "auth", "tasks", "relay", "logger", "projector", "worker", "beat"}
ENV_READ = re.compile(r"""env\.(?:str|int|float|bool|list|secret)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
ENVIRON_READ = re.compile(r"""os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']""")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def compose_commands() -> dict[str, str]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {}
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and command[:2] == ["sh", "-c"]:
            commands[name] = command[2].replace("$$", "$")
    return commands


def test_procfile_runs_every_process() -> None:
    assert set(procfile()) == PROCESSES


def test_compose_runs_the_procfile_commands() -> None:
    compose = compose_commands()
    for name, command in procfile().items():
        assert shlex.split(compose[name]) == shlex.split(command), name


def test_compose_waits_for_healthy_dependencies() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in PROCESSES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def variables_read() -> set[str]:
    found: set[str] = set()
    for path in [*ROOT.glob("shared/**/*.py"), *ROOT.glob("services/**/*.py")]:
        text = path.read_text()
        found |= set(ENV_READ.findall(text)) | set(ENVIRON_READ.findall(text))
    return found


def test_every_variable_the_config_reads_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    first_cells = re.findall(r"^\| ([^|]+) \|", readme, flags=re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}
    assert variables_read() - documented - NOT_CONFIGURATION == set()


def test_per_service_database_urls_are_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for service in ("AUTH", "TASKS", "LOGGER"):
        assert f"`{service}_DATABASE_URL`" in readme
