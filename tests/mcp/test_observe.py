"""Shadow mode (`--mode observe`): every call is decided and recorded, and forwarded whatever the
verdict; `pactum gateway report` shows what enforcing would have refused."""

from __future__ import annotations

import json

import pytest

from conftest import Agent, call, gateway_stdio, run_cli, text_of

pytestmark = pytest.mark.anyio


async def test_observe_mode_forwards_a_denied_call_and_the_report_lists_it(agent: Agent, tmp_path):
    target = agent.folder / "shadow.txt"
    async with gateway_stdio([*agent.server_args(), *agent.fs_upstream(), "--mode", "observe"], tmp_path / "gateway.err") as session:
        result = await call(session, "write_file", {"path": str(target), "content": "written in shadow"})
    assert not result.is_error, text_of(result)
    assert target.read_text() == "written in shadow"
    report = json.loads(
        (await run_cli("gateway", "report", "--agent", agent.id, "--since", "1h", "--json", server=agent.server)).stdout
    )
    assert report["totals"]["n_observed"] == 1, report
    assert report["totals"]["n_deny"] == 1, report
    groups = [group for group in report["groups"] if group["action"] == "write_file"]
    assert len(groups) == 1, report
    assert groups[0]["decision"] == "deny" and groups[0]["rule"] == "no-writes", report
    assert groups[0]["n_verdicts"] == 1, report
    text_report = await run_cli("gateway", "report", "--agent", agent.id, server=agent.server)
    assert "write_file" in text_report.stdout

