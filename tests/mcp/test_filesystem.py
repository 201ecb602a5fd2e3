"""`pactum gateway` over stdio in front of the real @modelcontextprotocol/server-filesystem, deciding
every call through a real `pactum serve`."""

from __future__ import annotations

import json

import anyio
import pytest

from conftest import (
    CALL_SECS,
    CLI_SECS,
    INJECTION,
    Agent,
    bundle_records,
    call,
    gateway_stdio,
    run_cli,
    run_pactum,
    text_of,
    tool_names,
)

pytestmark = pytest.mark.anyio


def gateway_args(agent: Agent, *extra: str) -> list[str]:
    return [*agent.server_args(), *agent.fs_upstream(), *extra]


async def test_tools_list_offers_only_the_tools_the_pact_declares(agent: Agent, tmp_path):
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        names = await tool_names(session)
    assert "read_text_file" in names
    # The filesystem server offers directory_tree, search_files, move_file, ...; the pact does not.
    for undeclared in ("directory_tree", "search_files", "move_file", "edit_file"):
        assert undeclared not in names
    assert set(names) <= {
        "read_text_file", "read_media_file", "list_allowed_directories", "create_directory",
        "write_file",
    }


async def test_an_allowed_read_inside_the_folder_returns_the_text(agent: Agent, tmp_path):
    (agent.folder / "notes.txt").write_text("the meeting moved to Thursday\n")
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        result = await call(session, "read_text_file", {"path": str(agent.folder / "notes.txt")})
    assert not result.is_error, text_of(result)
    assert "the meeting moved to Thursday" in text_of(result)


async def test_a_denied_write_names_the_rule_and_leaves_the_disk_alone(agent: Agent, tmp_path):
    target = agent.folder / "written.txt"
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        result = await call(session, "write_file", {"path": str(target), "content": "pwned"})
    assert result.is_error
    assert "no-writes" in text_of(result)
    assert "the agent never writes files" in text_of(result)  # the rule's reason
    assert "denied" in text_of(result).lower()
    assert not target.exists()


async def test_a_dot_dot_escape_from_the_folder_is_denied(agent: Agent, tmp_path):
    secret = agent.folder.parent / "secret.txt"
    secret.write_text("the launch codes\n")
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        result = await call(session, "read_text_file", {"path": f"{agent.folder}/../secret.txt"})
    assert result.is_error
    assert "the launch codes" not in text_of(result)
    assert "denied" in text_of(result).lower()


def test_the_injection_text_is_one_pactum_detect_flags():
    scan = json.loads(run_pactum("detect", "scan", "--source", "tool", "-", input=INJECTION).stdout)
    assert scan["flagged"], scan
    assert any(finding["kind"] == "injection" for finding in scan["findings"]), scan


async def test_an_injection_in_a_result_sends_the_next_elevated_call_to_review(agent: Agent, tmp_path):
    server = agent.server
    (agent.folder / "report.txt").write_text(INJECTION)
    new_folder = agent.folder / "archive"
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        # Before the injection, making a folder is allowed outright.
        first = await call(session, "create_directory", {"path": str(agent.folder / "before")})
        assert not first.is_error, text_of(first)
        read = await call(session, "read_text_file", {"path": str(agent.folder / "report.txt")})
        assert not read.is_error, text_of(read)
        assert "Ignore all previous instructions" in text_of(read)

        progress: list[str] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        held: dict = {}

        async def held_call() -> None:
            held["result"] = await call(
                session, "create_directory", {"path": str(new_folder)}, secs=CALL_SECS * 2,
                progress_callback=on_progress,
            )

        async with anyio.create_task_group() as group:
            group.start_soon(held_call)
            pending = []
            with anyio.fail_after(CALL_SECS):
                while not pending:
                    await anyio.sleep(0.2)
                    listed = await run_cli("approvals", "--agent", agent.id, "--json", server=server)
                    answer = json.loads(listed.stdout)
                    pending = answer["approvals"] if isinstance(answer, dict) else answer
            assert len(pending) == 1, pending
            approval = pending[0]
            assert approval["action"] == "create_directory", approval
            # Held, not run: the folder is not there while nobody has approved.
            await anyio.sleep(1.5)
            assert not new_folder.exists()
            verdict_idx = approval["verdict"]
            await run_cli("approve", str(verdict_idx), "--reason", "checked by the test", server=server)
        result = held["result"]
    assert not result.is_error, text_of(result)
    assert new_folder.is_dir()
    assert progress and any("approve" in message for message in progress), progress
    # The verdict was `review` because of the taint, and names the rule that sent it there.
    _, _, records = bundle_records(server, agent.id, tmp_path)
    verdict = next(record for record in records if record["index"] == verdict_idx)
    assert verdict["verdict"]["decision"] == "review", verdict
    assert "pactum:session-taint" in verdict["verdict"]["rules"], verdict


async def test_a_canary_in_a_read_file_is_a_finding_of_the_outcome(agent: Agent, tmp_path):
    (agent.folder / "customers.txt").write_text(f"customer list, internal: {agent.canary}\n")
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        await call(session, "read_text_file", {"path": str(agent.folder / "customers.txt")})
    _, _, records = bundle_records(agent.server, agent.id, tmp_path)
    outcomes = [record for record in records if record["kind"] == "outcome"]
    assert len(outcomes) == 1, records
    assert outcomes[0]["result"]["canary"] is True, outcomes


async def test_a_halt_from_the_cli_stops_the_next_call(agent: Agent, tmp_path):
    (agent.folder / "a.txt").write_text("alpha\n")
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        before = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
        assert not before.is_error, text_of(before)
        await run_cli("halt", agent.id, "--reason", "drill", server=agent.server)
        after = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
    assert after.is_error
    assert "halted" in text_of(after)
    assert "alpha" not in text_of(after)


async def test_every_call_has_records_a_verified_bundle_holds(agent: Agent, tmp_path):
    (agent.folder / "a.txt").write_text("alpha\n")
    async with gateway_stdio(gateway_args(agent), tmp_path / "gateway.err") as session:
        allowed = await call(session, "read_text_file", {"path": str(agent.folder / "a.txt")})
        assert not allowed.is_error, text_of(allowed)
        denied = await call(session, "write_file", {"path": str(agent.folder / "b.txt"), "content": "x"})
        assert denied.is_error
        missing = await call(session, "read_text_file", {"path": str(agent.folder / "missing.txt")})
        assert missing.is_error
    bundle, key, records = bundle_records(agent.server, agent.id, tmp_path)
    run_pactum("verify", str(bundle), "--key", str(key))

    by_index = {record["index"]: record for record in records}
    verdicts = [record for record in records if record["kind"] == "verdict"]
    outcomes = [record for record in records if record["kind"] == "outcome"]
    assert [verdict["verdict"]["action"] for verdict in verdicts] == ["read_text_file", "write_file", "read_text_file"]
    assert [verdict["verdict"]["decision"] for verdict in verdicts] == ["allow", "deny", "allow"]
    # Each forwarded call (the two allowed reads: one succeeded, one failed upstream) has exactly
    # one outcome, and it references its verdict.
    outcome_verdicts = []
    for outcome in outcomes:
        refs = [ref["index"] for ref in outcome.get("refs", []) if ref.get("rel") == "verdict"]
        assert len(refs) == 1, outcome
        assert by_index[refs[0]]["kind"] == "verdict"
        outcome_verdicts.append(refs[0])
    allowed_idxs = sorted(verdict["index"] for verdict in verdicts if verdict["verdict"]["decision"] == "allow")
    assert sorted(outcome_verdicts) == allowed_idxs
    statuses = sorted(outcome["status"] for outcome in outcomes)
    assert statuses == ["failed", "succeeded"], outcomes
