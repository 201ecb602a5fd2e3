"""A real rug pull: the gateway pins the tool definitions of server-filesystem 2026.7.4, then the
same upstream name is served by 2026.8.31, whose `read_media_file` has a new description and
output schema. The changed tool is withheld until an operator accepts its new digest."""

from __future__ import annotations

import json

import pytest

from conftest import (
    FS_SERVER,
    FS_SERVER_OLD,
    Agent,
    call,
    gateway_stdio,
    run_cli,
    text_of,
    tool_names,
)

pytestmark = pytest.mark.anyio


def tools_by_name(answer) -> dict[str, dict]:
    items = answer["tools"] if isinstance(answer, dict) else answer
    return {item["name"]: item for item in items}


async def test_a_changed_tool_definition_is_withheld_until_accepted(agent: Agent, tmp_path):
    (agent.folder / "a.txt").write_text("alpha\n")
    errlog = tmp_path / "gateway.err"
    old_args = [*agent.server_args(), *agent.fs_upstream(FS_SERVER_OLD)]
    new_args = [*agent.server_args(), *agent.fs_upstream(FS_SERVER)]

    async with gateway_stdio(old_args, errlog) as session:
        assert "read_media_file" in await tool_names(session)
    pinned = json.loads((await run_cli("gateway", "tools", "--agent", agent.id, "--json", server=agent.server)).stdout)
    assert tools_by_name(pinned)["read_media_file"]["status"] == "pinned", pinned

    async with gateway_stdio(new_args, errlog) as session:
        names = await tool_names(session)
        assert "read_media_file" not in names, names
        # A tool whose definition did not change stays offered.
        assert "read_text_file" in names
        refused = await call(session, "read_media_file", {"path": str(agent.folder / "a.txt")})
        assert refused.is_error
        assert "read_media_file" in text_of(refused)
        read = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
        assert not read.is_error, text_of(read)

    listed = json.loads((await run_cli("gateway", "tools", "--agent", agent.id, "--json", server=agent.server)).stdout)
    media = tools_by_name(listed)["read_media_file"]
    assert media["status"] == "changed", media
    text_listing = (await run_cli("gateway", "tools", "--agent", agent.id, server=agent.server)).stdout
    assert "changed" in text_listing and "read_media_file" in text_listing
    new_digest = media.get("pending_digest")
    assert new_digest and new_digest != media.get("digest"), f"`gateway tools --json` names no new digest for the changed tool: {media}"

    await run_cli(
        "gateway", "accept", "--agent", agent.id, "read_media_file", "--digest", new_digest,
        "--reason", "reviewed the 2026.8.31 description", server=agent.server,
    )
    accepted = json.loads((await run_cli("gateway", "tools", "--agent", agent.id, "--json", server=agent.server)).stdout)
    assert tools_by_name(accepted)["read_media_file"]["status"] == "pinned", accepted

    async with gateway_stdio(new_args, errlog) as session:
        assert "read_media_file" in await tool_names(session)
        media_read = await call(session, "read_media_file", {"path": str(agent.folder / "a.txt")})
        assert not media_read.is_error, media_read
