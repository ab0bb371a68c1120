"""The Procfile, the images, docker-compose.yml, the Kubernetes manifests and the README's
configuration table agree; the manifests are valid Kubernetes objects (checked offline)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from tests.manifests import (
    K8S,
    OVERLAYS,
    Manifest,
    app_commands,
    invalid_objects,
    load_documents,
    pod_spec,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
NOT_CONFIGURATION = {"PATH"}  # read by the runner only to find the venv's programs
PROCESSES = {"gateway", "auth", "tasks", "relay", "logger", "projector", "webhooks-api",
             "webhooks", "worker", "beat"}
HTTP_SERVICES = {"gateway": "GATEWAY_PORT", "auth": "AUTH_PORT", "tasks": "TASKS_PORT",
                 "logger": "LOGGER_PORT", "webhooks-api": "WEBHOOKS_PORT"}
SCALED = {"gateway", "tasks", "logger"}  # a PodDisruptionBudget and an autoscaler each
ENV_FILES = (".env.dev", ".env.staging.example", ".env.production.example")
SECRETS = {"DATABASE_URL", "REDIS_URL", "ADMIN_PASSWORD", "JWT_PRIVATE_KEYS"}
# A variable is read as `env.int("NAME", ...)` or declared as a field: `setting("NAME", ...)`.
ENV_READ = re.compile(r"""(?:env\.(?:str|int|float|bool|list|secret|timezone)|setting)\(\s*["']"""
                      r"""([A-Z][A-Z0-9_]*)["']""")
ENVIRON_READ = re.compile(r"""os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']""")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def exec_command(command: list[str]) -> str:
    """The command a `["sh", "-c", "exec …"]` runs: the shell replaces itself with it, so the
    process gets the stop signal. Anything else is returned as is, to fail the comparison."""
    if command[:2] == ["sh", "-c"] and command[2].startswith("exec "):
        return command[2].removeprefix("exec ")
    return shlex.join(command)


def same_command(ours: str, procfile_line: str) -> bool:
    return shlex.split(ours) == shlex.split(procfile_line)


def test_procfile_runs_every_process() -> None:
    assert set(procfile()) == PROCESSES


def test_compose_runs_the_procfile_commands() -> None:
    services = compose()["services"]
    for name, line in procfile().items():
        command = exec_command(services[name]["command"]).replace("$$", "$")
        assert same_command(command, line), name


def dockerfile_targets() -> dict[str, list[str]]:
    """Each stage of deploy/Dockerfile with its instructions (continuation lines joined)."""
    text = (ROOT / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    targets: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        stage = re.match(r"FROM \S+ AS (\S+)", line)
        if stage:
            current = targets.setdefault(stage.group(1), [])
        elif line.strip() and not line.startswith("#"):
            current.append(line.strip())
    return targets


def instruction(lines: list[str], name: str) -> list[str]:
    """The JSON arguments of the stage's (last) instruction `name`, e.g. CMD or HEALTHCHECK."""
    found = [line for line in lines if line.startswith(name + " ")]
    return list(yaml.safe_load(found[-1][found[-1].index("["):]))


def test_each_http_image_runs_its_procfile_command_as_pid_1() -> None:
    targets = dockerfile_targets()
    for name in HTTP_SERVICES:
        assert same_command(exec_command(instruction(targets[name], "CMD")), procfile()[name])


def test_image_healthchecks_follow_the_configured_port() -> None:
    targets = dockerfile_targets()
    for name, variable in HTTP_SERVICES.items():
        check = instruction(targets[name], "HEALTHCHECK")
        default = re.search(rf"\${{{variable}:-(\d+)}}", procfile()[name])
        assert default, name
        assert check == ["python3", "deploy/healthcheck.py", variable, default.group(1)], name


def test_images_run_as_a_user_that_owns_the_data_folder() -> None:
    runtime = dockerfile_targets()["runtime"]
    assert "USER 10001:10001" in runtime
    assert any("chown 10001:10001 /data" in line for line in runtime)
    assert any("DATA_DIR=/data" in line for line in runtime)


def test_the_build_context_leaves_local_state_out() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"  # nothing but what is let in again
    let_in = [line[1:] for line in lines if line.startswith("!")]
    assert let_in and not [path for path in let_in
                           if path.startswith((".", "tests", "testbed")) or "env" in path]


def test_compose_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name in PROCESSES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_compose_checks_the_servers_over_tcp() -> None:
    services = compose()["services"]
    assert "127.0.0.1" in services["postgres"]["healthcheck"]["test"]
    assert "-h 127.0.0.1" in services["redis"]["healthcheck"]["test"][1]


def test_compose_publishes_only_the_gateway_on_loopback_by_default() -> None:
    published = {name: service["ports"] for name, service in compose()["services"].items()
                 if "ports" in service}
    assert published == {"gateway": ["${GATEWAY_PUBLISH:-127.0.0.1:5000}:5000"]}


def test_compose_settings_come_from_the_env_file_unchanged() -> None:
    """What compose sets itself (its wiring) never contradicts an env file, so the staging
    and production files users copy are what the processes run with."""
    services = compose()["services"]
    for name in PROCESSES:
        assert services[name]["env_file"] == ["${TASKSTREAM_ENV_FILE:-.env.dev}"], name
        wiring = services[name]["environment"]
        for env_file in ENV_FILES:
            values = dotenv_values(ROOT / env_file)
            clashes = {key for key in wiring if key in values and values[key] != wiring[key]}
            assert clashes == set(), (name, env_file)


def test_compose_gives_secrets_as_files_only() -> None:
    spec = compose()
    declared = set(spec["secrets"])
    for name, service in spec["services"].items():
        environment = service.get("environment", {})
        assert not SECRETS & set(environment), name
        for key, value in environment.items():
            if key.endswith("_FILE"):
                assert value.removeprefix("/run/secrets/") in service["secrets"], (name, key)
        assert set(service.get("secrets", [])) <= declared, name
    for env_file in ENV_FILES:
        assert not SECRETS & set(dotenv_values(ROOT / env_file)), env_file


def test_the_deployed_env_examples_name_their_environment() -> None:
    for environment in ("staging", "production"):
        values = dotenv_values(ROOT / f".env.{environment}.example")
        assert values["TASKSTREAM_ENV"] == environment
    assert dotenv_values(ROOT / ".env.dev")["TASKSTREAM_ENV"] == "dev"


def rendered() -> dict[str, list[Manifest]]:
    return {"base": render(K8S / "base"),
            **{overlay: render(K8S / "overlays" / overlay) for overlay in OVERLAYS}}


@pytest.mark.parametrize("tree", ["base", *OVERLAYS])
def test_every_kubernetes_object_is_valid(tree: str) -> None:
    objects = rendered()[tree]
    assert len(objects) > 20
    assert invalid_objects(objects) == []


def test_the_validation_refuses_an_unknown_field() -> None:
    deployment = next(obj for obj in render(K8S / "base") if obj["kind"] == "Deployment")
    pod_spec(deployment)["containers"][0]["comand"] = ["sh"]
    assert invalid_objects([deployment])


@pytest.mark.parametrize("tree", ["base", *OVERLAYS])
def test_kubernetes_runs_the_procfile_commands(tree: str) -> None:
    commands = app_commands(rendered()[tree])
    for name, line in procfile().items():
        assert same_command(exec_command(commands[name]), line), name
    assert commands["migrate"] == compose()["services"]["migrate"]["command"]


def test_compose_and_kubernetes_run_each_process_in_the_same_image() -> None:
    services = compose()["services"]
    built = {name: service["image"].split(":")[0] for name, service in services.items()
             if "build" in service}
    for name, image in built.items():
        assert image == f"taskstream/{services[name]['build']['target']}", name
    deployed = {obj["metadata"]["name"]: container["image"] for obj in render(K8S / "base")
                for container in pod_spec(obj).get("containers", [])}
    assert deployed == built


def by_kind(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


@pytest.mark.parametrize("tree", ["base", *OVERLAYS])
def test_taskstream_pods_are_non_root_read_only_and_bounded(tree: str) -> None:
    ours = [obj for obj in rendered()[tree] if obj["kind"] in ("Deployment", "Job")
            and obj["metadata"]["name"] in PROCESSES | {"migrate"}]
    assert len(ours) == len(PROCESSES) + 1
    for obj in ours:
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert set(container["resources"]) == {"requests", "limits"}


@pytest.mark.parametrize("tree", ["base", *OVERLAYS])
def test_http_services_are_probed_and_the_busy_ones_scale(tree: str) -> None:
    objects = rendered()[tree]
    deployments = by_kind(objects, "Deployment")
    for name in HTTP_SERVICES:
        container = pod_spec(deployments[name])["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
    budgets, scalers = by_kind(objects, "PodDisruptionBudget"), by_kind(
        objects, "HorizontalPodAutoscaler")
    assert {budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
            for budget in budgets.values()} == SCALED
    assert {scaler["spec"]["scaleTargetRef"]["name"] for scaler in scalers.values()} == SCALED


def test_production_runs_standbys_and_a_single_beat() -> None:
    deployments = by_kind(render(K8S / "overlays" / "production"), "Deployment")
    assert deployments["relay"]["spec"]["replicas"] == 2
    assert deployments["projector"]["spec"]["replicas"] == 2
    assert deployments["webhooks"]["spec"]["replicas"] == 2
    assert deployments["beat"]["spec"]["replicas"] == 1
    assert deployments["beat"]["spec"]["strategy"] == {"type": "Recreate"}


def allowed_sources(objects: list[Manifest], target: str) -> set[str]:
    """Who may reach the pods of `target`: app names, `anyone`, or `namespace:<labels>`."""
    sources: set[str] = set()
    for policy in by_kind(objects, "NetworkPolicy").values():
        labels = policy["spec"]["podSelector"].get("matchLabels", {})
        if labels and labels not in ({"app.kubernetes.io/name": target},
                                     {"app.kubernetes.io/part-of": "taskstream"}):
            continue
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", [{"anyone": True}]):
                if "podSelector" in peer:
                    sources.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
                elif "namespaceSelector" in peer:
                    sources.add(f"namespace:{peer['namespaceSelector']['matchLabels']}")
                else:
                    sources.add("anyone")
    return sources


def test_only_the_gateway_is_reachable_from_outside() -> None:
    objects = render(K8S / "overlays" / "production")
    deny = by_kind(objects, "NetworkPolicy")["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    scrapers = "namespace:{'taskstream.io/scrape-metrics': 'true'}"
    assert allowed_sources(objects, "gateway") == {"anyone", scrapers}
    assert allowed_sources(objects, "tasks") == {"gateway", scrapers}
    assert allowed_sources(objects, "logger") == {"gateway", scrapers}
    # The task and logger services check tokens against the auth service's public keys.
    assert allowed_sources(objects, "webhooks-api") == {"gateway", scrapers}
    assert allowed_sources(objects, "auth") == {"gateway", "tasks", "logger", "webhooks-api",
                                                scrapers}
    for name in ("relay", "projector", "webhooks", "worker", "beat"):
        assert allowed_sources(objects, name) == {scrapers}, name


def test_production_commits_no_secret() -> None:
    objects = render(K8S / "overlays" / "production")
    assert by_kind(objects, "Secret") == {}
    assert not list((K8S / "overlays" / "production").glob("*secret*"))


def test_kustomizations_only_use_what_the_offline_rendering_understands() -> None:
    for path in K8S.rglob("kustomization.yaml"):
        render(path.parent)  # raises on anything it would get wrong
        assert load_documents(path)[0]["kind"] == "Kustomization"


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
    for service in ("AUTH", "TASKS", "LOGGER", "WEBHOOKS"):
        assert f"`{service}_DATABASE_URL`" in readme
