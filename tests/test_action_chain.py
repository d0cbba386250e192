"""A loop longer than a job may live runs as a chain of jobs: each stops inside its budget and dispatches the next."""

from __future__ import annotations

from pathlib import Path

from tests.action_world import World, world
from tests.github_standin.git_http import GitHttpServer
from tests.labs import PY, value_config
from tests.webhooks import Result

WORKFLOW_REF = "Codertocat/Hello-World/.github/workflows/autoresearch.yml@refs/heads/main"
# An experiment takes over two seconds (the agent sleeps), a job may use 3.6 s: at most two experiments per
# job, so five experiments need three jobs or more, whatever the machine's speed.
SLOW = f'{{kind: command, command: "sleep 2; {PY} agent.py values.txt", timeout: 30}}'
CONFIG = value_config(budget="{experiments: 5, hours: 72}", agent=SLOW) + "github:\n  job_hours: 0.001\n"


def start(w: World) -> Result:
    return w.dispatch(loop="demo", GITHUB_ACTOR="alice", GITHUB_WORKFLOW_REF=WORKFLOW_REF)


def replay(w: World, index: int, **env: str) -> Result:
    """Run the workflow the bot dispatched, as GitHub would: a workflow_dispatch by github-actions[bot]."""
    made = w.github.dispatches()[index]
    assert made["inputs"] == {"loop": "demo"} and made["ref"] == "main" and made["workflow"] == "autoresearch.yml"
    return w.dispatch(loop=made["inputs"]["loop"], GITHUB_ACTOR="github-actions[bot]",
                      GITHUB_WORKFLOW_REF=WORKFLOW_REF, GITHUB_RUN_ID=str(5000 + index), **env)


def test_a_72_hour_loop_runs_as_a_chain_of_jobs_with_no_lost_or_repeated_experiment(tmp_path: Path) -> None:
    with world(tmp_path, config_text=CONFIG) as w:
        jobs = [start(w)]
        while len(w.github.dispatches()) == len(jobs):  # each job that ran out of its budget started one more
            assert jobs[-1].code == 0, jobs[-1].stdout + jobs[-1].stderr
            assert "continues in a new job" in jobs[-1].summary
            jobs.append(replay(w, len(jobs) - 1))
            assert len(jobs) <= 6
        assert jobs[-1].code == 0, jobs[-1].stdout + jobs[-1].stderr
        assert len(jobs) >= 3
        assert all(d["by"] == "actions" for d in w.github.dispatches())  # made with GITHUB_TOKEN
        record = w.record()
        assert record is not None
        assert [a.experiment for a in record.attempts if a.status != "baseline"] == [1, 2, 3, 4, 5]
        assert sum(1 for a in record.attempts if a.status == "baseline") == 1
        assert record.stop_reason is not None and record.stop_reason.startswith("experiments:")
        starts = [n.data["chain"] for n in record.notes if n.kind == "run_start"]
        assert len(starts) == len(jobs)
        used = [float(c["used_h"]) for c in starts]
        assert used == sorted(used) and used[0] == 0 and used[-1] > 0  # the chain's hours carry over
        assert [c["experiments"] + c["tried"] for c in starts] == [5] * len(jobs)  # the same five, shared out
        assert len(w.github.pulls()) == 1 and "5 tried" in w.pr_body()


def test_a_stop_between_two_jobs_of_a_chain_wins(tmp_path: Path) -> None:
    with world(tmp_path, config_text=CONFIG) as w:
        first = start(w)
        assert first.code == 0 and len(w.github.dispatches()) == 1
        stopped, _ = w.comment(1, "/autoresearch stop")
        assert stopped.code == 0
        before = w.record()
        nxt = replay(w, 0)
        assert nxt.code == 0 and nxt.outputs.get("run") == "false"
        assert w.record() == before and len(w.github.dispatches()) == 1


def test_a_person_who_runs_the_workflow_starts_the_budget_anew(tmp_path: Path) -> None:
    with world(tmp_path, config_text=CONFIG) as w:
        assert start(w).code == 0 and len(w.github.dispatches()) == 1
        again = start(w)  # alice presses Run workflow while a hand-over is pending: a new chain of five
        assert again.code == 0
        record = w.record()
        assert record is not None
        chain = [n.data["chain"] for n in record.notes if n.kind == "run_start"][-1]
        assert chain["used_h"] == 0 and chain["experiments"] == 5


def test_without_actions_write_the_hand_over_fails_loudly_and_keeps_every_result(tmp_path: Path) -> None:
    with world(tmp_path, config_text=CONFIG) as w:
        w.github.actions_write = False
        result = start(w)
        assert result.code != 0
        assert "actions: write" in result.stdout and "Resource not accessible by integration" in result.stdout
        record = w.record()
        assert record is not None and any(a.status != "baseline" for a in record.attempts)
        assert w.github.dispatches() == []


def test_each_job_of_a_chain_ends_before_its_own_github_token_dies(tmp_path: Path) -> None:
    # Every job gets its own GITHUB_TOKEN that dies 14 s after it starts, for the API and for git over HTTP;
    # eight two-second experiments take longer than that, so only the hand-over keeps the loop from a 401.
    config = CONFIG.replace("experiments: 5,", "experiments: 8,")
    assert config != CONFIG
    with world(tmp_path, config_text=config) as w, \
            GitHttpServer(tmp_path, lambda token: w.github.valid(token) is not None) as server:
        assert w.lab.remote is not None
        w.lab.git("remote", "set-url", "origin", f"{server.url}/{w.lab.remote.name}")
        jobs = [w.dispatch(loop="demo", GITHUB_ACTOR="alice", GITHUB_WORKFLOW_REF=WORKFLOW_REF,
                           GITHUB_SERVER_URL=server.url, GITHUB_TOKEN=w.github.job_token(14.0))]
        while len(w.github.dispatches()) == len(jobs):
            assert jobs[-1].code == 0, jobs[-1].stdout + jobs[-1].stderr
            jobs.append(replay(w, len(jobs) - 1, GITHUB_SERVER_URL=server.url, GITHUB_TOKEN=w.github.job_token(14.0)))
            assert len(jobs) <= 8
        assert jobs[-1].code == 0, jobs[-1].stdout + jobs[-1].stderr
        assert all(status != 401 for _, _, status in server.requests)
        assert all(e.status != 401 for e in w.github.requests)
        w.lab.git("remote", "set-url", "origin", str(w.lab.remote))  # the test reads the remote directly
        record = w.record()
        assert record is not None
        assert [a.experiment for a in record.attempts if a.status != "baseline"] == [1, 2, 3, 4, 5, 6, 7, 8]
