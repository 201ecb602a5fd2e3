"""examples/mcp-filesystem as a person would use it: its pact and its config-file form of the
gateway, with the folder, server and agent of this run filled in."""

from __future__ import annotations

import json

import pytest

from conftest import FS_SERVER, ROOT, call, gateway_stdio, make_agent, text_of, tool_names

pytestmark = pytest.mark.anyio

EXAMPLE = ROOT / "examples" / "mcp-filesystem"


async def test_the_example_pact_and_gateway_config_work_as_written(server, tmp_path, request):
    agent = make_agent(server, tmp_path, request.node.name)
    pact_text = (EXAMPLE / "pact.yaml").read_text()
    assert "/srv/docs" in pact_text and "acme/docs-reader" in pact_text
    pact_file = tmp_path / "example-pact.yaml"
    # Version 2: the agent already runs the tests' own pact as version 1.
    pact_file.write_text(
        pact_text.replace("/srv/docs", str(agent.folder))
        .replace("acme/docs-reader", agent.id)
        .replace("\nversion: 1\n", "\nversion: 2\n")
    )
    pushed = server.cli_json("pact", "push", str(pact_file))
    server.cli("pact", "activate", "--agent", agent.id, str(pushed["version"]))

    config_text = (EXAMPLE / "gateway.yaml").read_text()
    for expected in ("agent: acme/docs-reader", "server: http://127.0.0.1:7700", "command: npx", "/srv/docs"):
        assert expected in config_text, expected
    args_line = next(line for line in config_text.splitlines() if line.strip().startswith("args:"))
    config_text = (
        config_text.replace("agent: acme/docs-reader", f"agent: {agent.id}")
        .replace("server: http://127.0.0.1:7700", f"server: {server.url}")
        .replace("command: npx", "command: node")
        .replace(args_line, f"    args: {json.dumps([str(FS_SERVER), str(agent.folder)])}")
    )
    config = tmp_path / "gateway.yaml"
    config.write_text(config_text)

    (agent.folder / "handbook.md").write_text("# Handbook\nBe kind.\n")
    # The config file leaves the token to the environment.
    env = {"PACTUM_TOKEN": agent.token}
    async with gateway_stdio(["--config", str(config)], tmp_path / "gateway.err", env) as session:
        names = await tool_names(session)
        assert "read_text_file" in names and "directory_tree" not in names, names
        read = await call(session, "read_text_file", {"path": str(agent.folder / "handbook.md")})
        assert not read.is_error, text_of(read)
        assert "Be kind." in text_of(read)
        denied = await call(session, "write_file", {"path": str(agent.folder / "x.md"), "content": "x"})
        assert denied.is_error and "no-writes" in text_of(denied), text_of(denied)
    assert not (agent.folder / "x.md").exists()
