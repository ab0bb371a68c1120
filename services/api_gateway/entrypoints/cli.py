"""Gateway commands: regenerate the API reference from a running system."""

from __future__ import annotations

from pathlib import Path

import click
import requests

from services.api_gateway.service_layer.openapi import render_markdown
from shared.config import Env
from shared.settings import Ports, read_settings

API_DOC = Path("docs/api.md")


@click.group("docs")
def docs() -> None:
    """API reference commands."""


@docs.command("generate")
@click.option("--gateway", default=None, help="Gateway URL (default: localhost:$GATEWAY_PORT).")
@click.option("--output", type=click.Path(path_type=Path), default=API_DOC, show_default=True)
def generate(gateway: str | None, output: Path) -> None:
    """Write docs/api.md from the running gateway's /openapi.json."""
    base = gateway or f"http://localhost:{read_settings(Ports, Env.load()).gateway}"
    response = requests.get(f"{base.rstrip('/')}/openapi.json", timeout=10)
    response.raise_for_status()
    output.write_text(render_markdown(response.json()))
    click.echo(f"wrote {output} from {base}/openapi.json")


COMMANDS = [docs]
