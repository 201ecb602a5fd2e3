"""The gateway over Streamable HTTP (`--listen`): each client shows an agent token."""

from __future__ import annotations

import httpx2
import pytest

from conftest import CALL_SECS, Agent, HttpGateway, call, mcp_http, text_of, tool_names

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "pactum-test", "version": "0"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def http_gateway(agent: Agent, tmp_path):
    gateway = HttpGateway([*agent.server_args(), *agent.fs_upstream()], tmp_path / "gateway.err")
    yield gateway
    gateway.stop()


async def test_allow_and_deny_over_streamable_http(agent: Agent, http_gateway: HttpGateway):
    (agent.folder / "a.txt").write_text("alpha over http\n")
    target = agent.folder / "b.txt"
    async with mcp_http(http_gateway.url, agent.token) as session:
        names = await tool_names(session)
        assert "read_text_file" in names and "directory_tree" not in names
        allowed = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
        assert not allowed.is_error, text_of(allowed)
        assert "alpha over http" in text_of(allowed)
        denied = await call(session, "write_file", {"path": str(target), "content": "x"})
        assert denied.is_error
        assert "no-writes" in text_of(denied)
    assert not target.exists()


async def test_no_token_or_a_wrong_token_is_401(agent: Agent, http_gateway: HttpGateway, server):
    other = server.cli_json(
        "token", "create", "--server", server.url, "--role", "auditor", "--name", "not-an-agent"
    )["token"]
    async with httpx2.AsyncClient(timeout=CALL_SECS) as client:
        bare = await client.post(http_gateway.url, json=INITIALIZE, headers=HEADERS)
        assert bare.status_code == 401, bare.text
        wrong = await client.post(
            http_gateway.url, json=INITIALIZE, headers={**HEADERS, "Authorization": "Bearer pct_not_a_token"}
        )
        assert wrong.status_code == 401, wrong.text
        auditor = await client.post(
            http_gateway.url, json=INITIALIZE, headers={**HEADERS, "Authorization": f"Bearer {other}"}
        )
        assert auditor.status_code in (401, 403), auditor.text
        good = await client.post(
            http_gateway.url, json=INITIALIZE, headers={**HEADERS, "Authorization": f"Bearer {agent.token}"}
        )
        assert good.status_code == 200, good.text
