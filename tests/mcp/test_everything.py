"""The reference server-everything behind the gateway: a tool call and a resource read."""

from __future__ import annotations

import pytest

import os
import subprocess
import time

import anyio

from conftest import (
    CALL_SECS,
    EVERYTHING_SERVER,
    START_SECS,
    call,
    free_port,
    gateway_stdio,
    make_agent,
    stop_process,
    text_of,
    tool_names,
)

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


@pytest.fixture
def everything_over_http(tmp_path):
    """server-everything as a Streamable HTTP server on a free loopback port."""
    port = free_port()
    log = tmp_path / "everything-http.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["node", str(EVERYTHING_SERVER), "streamableHttp"],
            env={**os.environ, "PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECS
        while f"listening on port {port}" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(proc)


async def test_an_http_upstream_is_decided_like_a_stdio_one(everything_agent, everything_over_http, tmp_path):
    agent = everything_agent
    args = [*agent.server_args(), "--upstream", f"everything=http:{everything_over_http}"]
    async with gateway_stdio(args, tmp_path / "gateway.err") as session:
        names = await tool_names(session)
        assert "echo" in names and "get-env" not in names, names
        echoed = await call(session, "echo", {"message": "over http upstream"})
        assert not echoed.is_error, text_of(echoed)
        assert "over http upstream" in text_of(echoed)
        refused = await call(session, "echo", {"message": f"the folder is {agent.folder}"})
        assert refused.is_error, text_of(refused)
