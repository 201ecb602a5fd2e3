"""With its Pactum server gone, the gateway refuses every call (fail closed) and keeps serving."""

from __future__ import annotations

import pytest

from conftest import PactumServer, call, gateway_stdio, make_agent, text_of, tool_names

pytestmark = pytest.mark.anyio


async def test_every_call_is_refused_while_the_server_is_down(tmp_path, request):
    own_server = PactumServer(tmp_path / "data").start()
    try:
        agent = make_agent(own_server, tmp_path / "work", request.node.name)
        (agent.folder / "a.txt").write_text("alpha\n")
        target = agent.folder / "b.txt"
        args = [*agent.server_args(), *agent.fs_upstream()]
        async with gateway_stdio(args, tmp_path / "gateway.err") as session:
            before = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
            assert not before.is_error, text_of(before)

            own_server.stop()
            for tool, tool_args in [
                ("read_text_file", {"path": str(agent.folder / "a.txt")}),
                ("create_directory", {"path": str(agent.folder / "new")}),
                ("write_file", {"path": str(target), "content": "x"}),
            ]:
                refused = await call(session, tool, tool_args)
                assert refused.is_error, (tool, text_of(refused))
                assert "could not decide" in text_of(refused).lower(), text_of(refused)
                assert "alpha" not in text_of(refused)
            assert not target.exists()
            assert not (agent.folder / "new").exists()
            # The gateway itself is still there: it answers the MCP session.
            assert "read_text_file" in await tool_names(session)

            # Once the server is back, calls are decided again.
            own_server.start()
            after = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
            assert not after.is_error, text_of(after)
            assert "alpha" in text_of(after)
    finally:
        own_server.stop()
