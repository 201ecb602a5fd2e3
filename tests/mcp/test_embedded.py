"""Embedded mode: `--data DIR --pact FILE`, no server; the data directory's log verifies."""

from __future__ import annotations

import pytest

from conftest import call, gateway_stdio, make_agent, run_pactum, text_of

pytestmark = pytest.mark.anyio


async def test_an_allowed_call_in_embedded_mode_and_the_log_verifies(tmp_path, request):
    agent = make_agent(None, tmp_path, request.node.name)
    (agent.folder / "a.txt").write_text("embedded alpha\n")
    data = tmp_path / "data"
    args = ["--agent", agent.id, "--data", str(data), "--pact", str(agent.pact_file), *agent.fs_upstream()]
    async with gateway_stdio(args, tmp_path / "gateway.err") as session:
        allowed = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
        assert not allowed.is_error, text_of(allowed)
        assert "embedded alpha" in text_of(allowed)
        denied = await call(session, "write_file", {"path": str(agent.folder / "b.txt"), "content": "x"})
        assert denied.is_error and "no-writes" in text_of(denied)
    assert not (agent.folder / "b.txt").exists()
    verified = run_pactum("ledger", "verify", "--data", str(data))
    assert verified.returncode == 0
    exported = tmp_path / "embedded.bundle.json"
    run_pactum("ledger", "export", "--data", str(data), "--agent", agent.id, "-o", str(exported))
    key = tmp_path / "ledger.pub"
    key.write_text(run_pactum("ledger", "key", "--data", str(data)).stdout)
    run_pactum("verify", str(exported), "--key", str(key))
    kinds = [line for line in exported.read_text().split('"kind\\":\\"')[1:]]
    assert any(kind.startswith("verdict") for kind in kinds)
    assert any(kind.startswith("outcome") for kind in kinds)
