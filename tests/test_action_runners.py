"""`runners: N` end to end: the gate's matrix starts N research jobs at once; they share the loop through the remote."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from arl_bot import config
from arl_bot.git import Git
from arl_bot.github import chain, notes
from arl_bot.record import Note

from tests.action_world import ResearchJob, World, research_matrix, world
from tests.github_standin.git_http import GitHttpServer
from tests.labs import PY, Lab, git, ticket_agent, value_config
from tests.test_chain import record_after_a_job
from tests.test_runners import EVAL_SUM, check_shared_record, final_record
from tests.webhooks import Result, comment_payload, payload, run_action

RUNNERS = 2
ASKED = 4  # `/autoresearch continue 4`: the matrix's jobs share the four out, two each
EACH = ASKED // RUNNERS
# Tickets hand the agents distinct changes, whichever job draws them: each lowers the score by one.
JOBS = ["a=1", "b=1", "c=1", "a=2", "b=2", "c=2", "a=3", "b=3", "c=3"]


def runners_world(tmp_path: Path, budget: str = "{experiments: 50}") -> tuple[Any, Path]:
    """A loop with `runners: 2` whose agents draw distinct changes (tickets) from a folder they share."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "jobs.txt").write_text("\n".join(JOBS) + "\n")
    text = value_config(budget=budget, agent=f'{{kind: command, command: "{PY} agent.py", timeout: 120}}',
                        extra=f"runners: {RUNNERS}")
    files = {"model/a.txt": "0\n", "model/b.txt": "0\n", "model/c.txt": "0\n", "eval/run.py": EVAL_SUM,
             "agent.py": ticket_agent(shared)}
    return world(tmp_path, config_text=text, files=files), shared


def gate(w: World, event: str, data: dict[str, Any]) -> Result:
    """The gate job: `arl-bot action` with `phase: gate` on the run's event."""
    return run_action(w.tmp, w.github, w.lab.root, event, data, ARL_PHASE="gate", GITHUB_ACTOR="alice")


def ended(check: Path, run_id: str) -> bool:
    """Whether the run run_id noted its end in the record on the remote (check: a clone to fetch it into)."""
    record = notes.load(Git(check), "demo")
    return record is not None and any(n.kind == "run_end" and n.data.get("run_id") == run_id for n in record.notes)


def wait_for(done: Callable[[], bool], job: ResearchJob) -> None:
    """Wait until done() while job runs (it must not end first)."""
    deadline = time.monotonic() + 120
    while not done():
        assert time.monotonic() < deadline and job.process is not None and job.process.poll() is None, job.wait().log
        time.sleep(0.05)


def finish(jobs: list[ResearchJob]) -> list[ResearchJob]:
    done = [job.wait() for job in jobs]
    for job in done:
        assert job.code == 0, f"shard {job.entry.get('shard', 0)}:\n{job.log}"
        assert "::error" not in job.log and "::warning" not in job.log, job.log
    return done


def test_a_continue_command_runs_the_loop_in_n_research_jobs_at_once_with_one_pull_request(tmp_path: Path) -> None:
    made, shared = runners_world(tmp_path)
    with made as w, GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        first = w.dispatch(experiments=1, loop="demo")  # the loop's first run opens its pull request
        assert first.code == 0, first.stdout + first.stderr
        assert [p["number"] for p in w.github.pulls()] == [1]

        comment = w.github.add_comment(1, "alice", f"/autoresearch continue {ASKED}")
        data = comment_payload(comment, 1)
        decided = gate(w, "issue_comment", data)
        entries = json.loads(decided.outputs["loops"])
        assert entries == [{"loop": "demo", "runner": ["self-hosted", "gpu"]},
                           {"loop": "demo", "runner": ["self-hosted", "gpu"], "shard": 1}]
        assert decided.outputs["command"] == "continue" and decided.outputs["experiments"] == str(ASKED)
        assert decided.outputs["pr"] == "1" and decided.outputs["reply"]

        jobs = finish(research_matrix(w, decided, "issue_comment", data, git_server=server.url,
                                      token=lambda: w.github.job_token(600)))

        assert w.lab.remote is not None
        record = final_record(tmp_path, w.lab.remote)
        check_shared_record(tmp_path, Lab(w.lab.root, w.lab.remote), record)  # once each, contiguous, keeps improve
        experiments = [a for a in record.attempts if a.status != "baseline"]
        assert len(experiments) == 1 + ASKED  # the dispatch's one, and the four shared out
        assert len(list(shared.glob("ticket-*"))) == len(experiments)  # no agent's work lost or recorded twice
        # Each job's attempts carry its run id: the run's, and the shard after the first.
        by_run = {run_id: sum(1 for a in experiments if a.run_id == run_id) for run_id in {"4242", "4242.1"}}
        assert by_run == {"4242": 1 + EACH, "4242.1": EACH}  # the dispatch's one was run 4242 too
        for job in jobs:
            assert job.outputs["experiments"] == str(EACH) and job.outputs["pr"] == "1"

        # One pull request, whose body shows every attempt, however the jobs' updates interleaved.
        assert [p["number"] for p in w.github.pulls()] == [1]
        body = w.pr_body()
        tried = len(experiments)
        assert f"| experiments | {tried} tried, {sum(1 for a in experiments if a.status == 'keep')} kept" in body
        best = record.best
        assert best is not None and f"(experiment {best.experiment})" in body

        # Each job tells its story in a reply only it writes (GitHub cannot compare-and-swap a comment): the
        # first in the gate's reply, the second in its own; no line of either is lost to the other's edit.
        replies = [c for c in w.github.comments(1) if c["user"]["login"] == w.github.bot_login
                   and "<!-- arl-bot:run-reply -->" in c["body"]]
        assert len(replies) == RUNNERS and replies[0]["id"] == int(decided.outputs["reply"])
        assert f"{RUNNERS} research jobs (`runners: {RUNNERS}`) wait for runners" in replies[0]["body"]
        assert f"Research job 2 of {RUNNERS} for `demo`" in replies[1]["body"]
        assert f"#issuecomment-{decided.outputs['reply']}" in replies[1]["body"]
        for reply in replies:
            assert len(re.findall(r"🚀 Started on runner `gpu-runner-\d`", reply["body"])) == 1, reply["body"]
            assert reply["body"].count("✅ Finished at ") == 1, reply["body"]
            assert f": {EACH} experiments," in reply["body"]
        assert w.github.reactions(comment["id"]) == ["eyes", "rocket"]


def test_a_job_whose_body_update_lands_last_leaves_the_pull_request_showing_every_job_s_attempts(
        tmp_path: Path) -> None:
    made, _ = runners_world(tmp_path)
    with made as w, GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        assert w.dispatch(experiments=1, loop="demo").code == 0
        comment = w.github.add_comment(1, "alice", f"/autoresearch continue {ASKED}")
        data = comment_payload(comment, 1)
        decided = gate(w, "issue_comment", data)
        first, second = research_matrix(w, decided, "issue_comment", data, git_server=server.url,
                                        token=lambda: w.github.job_token(600), start=False, GITHUB_RUN_ID="5151")
        # GitHub is slow for the first job alone: its body updates get through only after the second job ended,
        # which a runner picked up late. The first's last body was rendered before the second ran at all.
        first.env["ARL_GITHUB_TIMEOUT"] = "300"  # slow, not failing: its client waits instead of retrying
        held = w.github.hold(method="PATCH", path=r"/pulls/1$", token=first.env["GITHUB_TOKEN"])
        first.start()
        assert w.lab.remote is not None
        watch = tmp_path / "watch"
        git(tmp_path, "clone", "--quiet", str(w.lab.remote), str(watch))
        wait_for(lambda: ended(watch, "5151"), first)
        finish([second.start()])
        held.release()
        finish([first])
        assert held.waited >= 1  # the first job's updates were held, and got through after the second's

        record = final_record(tmp_path, w.lab.remote)
        experiments = [a for a in record.attempts if a.status != "baseline"]
        assert len(experiments) == 1 + ASKED
        assert {a.run_id for a in experiments} == {"4242", "5151", "5151.1"}
        kept = sum(1 for a in experiments if a.status == "keep")
        assert f"| experiments | {len(experiments)} tried, {kept} kept" in w.pr_body()


def test_the_run_workflow_button_starts_a_new_loop_in_n_jobs_that_open_one_pull_request(tmp_path: Path) -> None:
    # The loop's first run: no branch, no pull request. Both jobs look for the pull request, find none and open it;
    # GitHub takes the first and refuses the second (422: one already exists), which must use the first's.
    made, _ = runners_world(tmp_path, budget=f"{{experiments: {ASKED}}}")
    with made as w, GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        data = payload("workflow_dispatch")
        data["inputs"] = {"loop": "demo", "experiments": ""}
        decided = gate(w, "workflow_dispatch", data)
        assert len(json.loads(decided.outputs["loops"])) == RUNNERS and decided.outputs["pr"] == ""
        first, second = research_matrix(w, decided, "workflow_dispatch", data, git_server=server.url,
                                        token=lambda: w.github.job_token(600), start=False)
        first.env["ARL_GITHUB_TIMEOUT"] = "300"  # slow, not failing: its client waits instead of retrying
        held = w.github.hold(method="POST", path=r"/pulls$", token=first.env["GITHUB_TOKEN"])
        first.start()
        wait_for(lambda: held.waited == 1, first)  # the first looked, found none, and asked to open it
        second.start()
        wait_for(lambda: bool(w.github.pulls()), second)  # the second opened it meanwhile
        held.release()
        finish([first, second])
        refused = [e for e in w.github.requests if e.method == "POST" and e.operation.endswith("/pulls")]
        assert [e.status for e in refused] == [201, 422]  # the race happened, and only once

        assert w.lab.remote is not None
        record = final_record(tmp_path, w.lab.remote)
        check_shared_record(tmp_path, Lab(w.lab.root, w.lab.remote), record)
        assert [a.status for a in record.attempts].count("baseline") == 1  # measured once, by one of them
        experiments = [a for a in record.attempts if a.status != "baseline"]
        assert len(experiments) == ASKED
        assert [p["number"] for p in w.github.pulls()] == [1]
        assert f"| experiments | {len(experiments)} tried" in w.pr_body()


def test_the_schedule_continues_the_loop_in_n_jobs(tmp_path: Path) -> None:
    made, _ = runners_world(tmp_path, budget=f"{{experiments: {ASKED}}}")
    with made as w, GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        assert w.dispatch(experiments=1, loop="demo").code == 0
        data = {"schedule": "17 */6 * * *"}  # GitHub's payload of a cron event names the schedule
        decided = gate(w, "schedule", data)
        assert [e.get("shard", 0) for e in json.loads(decided.outputs["loops"])] == list(range(RUNNERS))
        assert decided.outputs["pr"] == "" and decided.outputs["reply"] == ""  # nobody to answer
        jobs = finish(research_matrix(w, decided, "schedule", data, git_server=server.url,
                                      token=lambda: w.github.job_token(600), GITHUB_RUN_ID="6262"))
        assert all(job.outputs["pr"] == "1" and job.outputs["experiments"] == str(EACH) for job in jobs)
        assert w.lab.remote is not None
        record = final_record(tmp_path, w.lab.remote)
        check_shared_record(tmp_path, Lab(w.lab.root, w.lab.remote), record)
        experiments = [a for a in record.attempts if a.status != "baseline"]
        assert sorted(a.run_id for a in experiments) == ["4242", "6262", "6262", "6262.1", "6262.1"]
        assert [p["number"] for p in w.github.pulls()] == [1]
        assert f"| experiments | {len(experiments)} tried" in w.pr_body()
        assert w.github.replies(1) == []  # a schedule posts no comments; the body says it all


@pytest.mark.unit
def test_a_loop_s_jobs_share_its_experiments_and_its_cost_budget_out() -> None:
    assert [chain.share(5, shard, 3) for shard in range(3)] == [2, 2, 1]  # exactly five, the first jobs one more
    assert [chain.share(1, shard, 2) for shard in range(2)] == [1, 0]  # the second has none: it is skipped
    assert chain.share(None, 1, 2) is None and chain.share(7, 0, 1) == 7  # no limit; one job takes it all
    budget = config.parse(value_config(budget="{experiments: 20, hours: 8, cost_usd: 10}")).loops["demo"].budget
    each = chain.job_budget(budget, 2.0, 4)
    assert (each.cost_usd, each.hours, each.experiments) == (2.5, 2.0, 20)  # experiments: chain.share, per shard
    assert chain.job_budget(budget, 8, 1) is budget


@pytest.mark.unit
def test_a_chain_of_runners_jobs_continues_from_the_first_job_s_end_and_counts_every_job_s_experiments() -> None:
    # `runners: 2`: the second job, picked up late, started when 3 were tried, and ended last, its share done;
    # the first started at 1 tried, ran out of its job's hours and handed over. 9 tried now: 8 by this run.
    record = record_after_a_job(0.0, 3600, "hours: 1.00 h of 1 h used", experiments=20, tried_before=1, tried_now=9)
    first_start, first_end = record.notes
    first_start.data["run_id"] = first_end.data["run_id"] = "5151"
    chained = {**first_start.data["chain"], "tried": 3}
    late = Note("run_start", "2024-01-01T00:10:00.000000Z", {"chain": chained, "run_id": "5151.1"})
    late_end = Note("run_end", "2024-01-01T01:20:00.000000Z",
                    {"reason": "experiments: ran 10 of 10", "run_id": "5151.1"})
    record.notes = [first_start, late, first_end, late_end]
    assert chain.pending(record) == (1.0, 12)  # the first job's hours; 20 less the 8 both jobs tried


WORKFLOW_REF = "Codertocat/Hello-World/.github/workflows/autoresearch.yml@refs/heads/main"


def test_a_loop_longer_than_a_job_runs_as_a_chain_of_matrices_that_share_its_budget_exactly(tmp_path: Path) -> None:
    # An experiment takes over two seconds (the agent sleeps), a job may use 3.6 s: six experiments need more
    # than one run of the matrix, whose first job hands the loop on each time.
    slow = f'{{kind: command, command: "sleep 2; {PY} agent.py", timeout: 60}}'
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "jobs.txt").write_text("\n".join(JOBS) + "\n")
    text = value_config(budget="{experiments: 6, hours: 72}", agent=slow, extra=f"runners: {RUNNERS}") \
        + "github:\n  job_hours: 0.001\n"
    files = {"model/a.txt": "0\n", "model/b.txt": "0\n", "model/c.txt": "0\n", "eval/run.py": EVAL_SUM,
             "agent.py": ticket_agent(shared)}
    with world(tmp_path, config_text=text, files=files) as w, \
            GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        actor = "alice"  # presses Run workflow; every later run is the bot's own hand-over
        runs = 0
        while True:
            data = payload("workflow_dispatch")
            data["inputs"] = {"loop": "demo", "experiments": ""}
            decided = run_action(w.tmp, w.github, w.lab.root, "workflow_dispatch", data, ARL_PHASE="gate",
                                 GITHUB_ACTOR=actor, GITHUB_WORKFLOW_REF=WORKFLOW_REF)
            dispatched = len(w.github.dispatches())
            finish(research_matrix(w, decided, "workflow_dispatch", data, git_server=server.url,
                                   token=lambda: w.github.job_token(600), GITHUB_RUN_ID=str(7000 + runs),
                                   GITHUB_ACTOR=actor, GITHUB_WORKFLOW_REF=WORKFLOW_REF))
            runs += 1
            if len(w.github.dispatches()) == dispatched:
                break
            assert len(w.github.dispatches()) == dispatched + 1 and runs <= 6  # only the first job hands over
            actor = "github-actions[bot]"
        assert runs >= 2
        assert w.lab.remote is not None
        record = final_record(tmp_path, w.lab.remote)
        check_shared_record(tmp_path, Lab(w.lab.root, w.lab.remote), record)
        experiments = [a for a in record.attempts if a.status != "baseline"]
        assert len(experiments) == 6  # the loop's budget, shared out among the jobs of every run: no more, no less
        assert {a.run_id.split(".")[0] for a in experiments} <= {str(7000 + n) for n in range(runs)}
        assert "| experiments | 6 tried" in w.pr_body()


def test_a_job_whose_share_is_none_says_so_and_runs_nothing(tmp_path: Path) -> None:
    made, _ = runners_world(tmp_path)
    with made as w, GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        assert w.dispatch(experiments=1, loop="demo").code == 0
        comment = w.github.add_comment(1, "alice", "/autoresearch continue 1")
        data = comment_payload(comment, 1)
        decided = gate(w, "issue_comment", data)
        first, second = finish(research_matrix(w, decided, "issue_comment", data, git_server=server.url,
                                               token=lambda: w.github.job_token(600), GITHUB_RUN_ID="8383"))
        assert first.outputs["experiments"] == "1" and "experiments" not in second.outputs
        assert "Skipped: the 1 experiment asked for went to the loop's other research jobs" in second.summary
        assert w.lab.remote is not None
        record = final_record(tmp_path, w.lab.remote)
        assert [a.run_id for a in record.attempts if a.status != "baseline"] == ["4242", "8383"]
        assert not any(n.data.get("run_id") == "8383.1" for n in record.notes)  # it did not even start a run
        own = [c["body"] for c in w.github.comments(1) if "Research job 2 of 2" in c["body"]]
        assert len(own) == 1 and "⏭️ Skipped: the 1 experiment asked for" in own[0]
        # `phase: all` (the gate and one research job in one) is one job, whatever `runners:` says: all three are its.
        alone = w.dispatch(experiments=3, loop="demo")
        assert alone.code == 0 and alone.outputs["experiments"] == "3", alone.stdout + alone.stderr
