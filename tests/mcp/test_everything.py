"""The reference server-everything behind the gateway: a tool call and a resource read."""

from __future__ import annotations

import pytest

from conftest import CALL_SECS, EVERYTHING_SERVER, call, gateway_stdio, make_agent, text_of, tool_names

import anyio

pytestmark = pytest.mark.anyio


@pytest.fixture
def everything_agent(server, tmp_path, request):
    return make_agent(server, tmp_path, request.node.name, template="everything.yaml")


async def test_echo_and_a_resource_read_through_the_gateway(everything_agent, tmp_path):
    agent = everything_agent
    args = [*agent.server_args(), "--upstream", f"everything=stdio:node {EVERYTHING_SERVER} stdio"]
    async with gateway_stdio(args, tmp_path / "gateway.err") as session:
        names = await tool_names(session)
        assert "echo" in names
        assert "get-env" not in names and "trigger-long-running-operation" not in names
        echoed = await call(session, "echo", {"message": "hello through pactum"})
        assert not echoed.is_error, text_of(echoed)
        assert "hello through pactum" in text_of(echoed)
        refused = await call(session, "get-env", {})
        assert refused.is_error
        assert "get-env" in text_of(refused)

        with anyio.fail_after(CALL_SECS):
            read = await session.read_resource("demo://resource/dynamic/text/1")
        texts = [getattr(content, "text", "") for content in read.contents]
        assert any(texts), read
