"""launch/gpu.sh against stand-in `bert-jax`, `srun` and `scontrol`: the command and the
multi-process environment each machine gets, on one machine, several, and under SLURM; and
that --dry-run prints exactly what a real run executes."""

import pytest

from tests.launch.stubs import Stubs, assert_one_line_error, dry_run_lines, help_options

ARGS = ["--config=configs/pretrain.py:base", "--workdir=/runs/my run", "--config.mesh.fsdp=4"]
JAX_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


@pytest.fixture
def stubs(tmp_path):
    return Stubs(tmp_path)


def bert_jax_calls(stubs):
    """(argv, JAX_* environment) of each `bert-jax` run since the last look."""
    return [
        (call["argv"], {k: v for k, v in call["env"].items() if k.startswith("JAX_")})
        for call in stubs.calls()
        if call["argv"][0] == "bert-jax"
    ]


def as_executed(words):
    """A printed `[env NAME=VALUE ...] COMMAND ...` line as (argv, environment)."""
    env = {}
    if words[0] == "env":
        words = words[1:]
        while "=" in words[0] and not words[0].startswith("-"):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
    return words, env


def multi(coordinator, count, index):
    return dict(zip(JAX_ENV, (coordinator, str(count), str(index)), strict=True))


def test_one_machine_runs_the_command_alone(stubs):
    done = stubs.run("gpu.sh", "pretrain", *ARGS)
    assert done.returncode == 0, done.stderr
    assert bert_jax_calls(stubs) == [(["bert-jax", "pretrain", *ARGS], {})]
    printed = dry_run_lines(stubs.run("gpu.sh", "--dry-run", "pretrain", *ARGS))
    assert printed == [["bert-jax", "pretrain", *ARGS]]
    assert stubs.calls() == []  # a dry run runs nothing


@pytest.mark.parametrize("command", ["pretrain", "finetune", "evaluate"])
def test_several_machines_from_options_and_from_variables(stubs, command):
    options = ["--coordinator=node0:1234", "--num_nodes=3"]
    for rank in range(3):
        done = stubs.run("gpu.sh", *options, f"--node_rank={rank}", command, *ARGS)
        assert done.returncode == 0, done.stderr
        expected = [(["bert-jax", command, *ARGS], multi("node0:1234", 3, rank))]
        assert bert_jax_calls(stubs) == expected
        printed = stubs.run("gpu.sh", "--dry-run", *options, f"--node_rank={rank}", command, *ARGS)
        assert [as_executed(words) for words in dry_run_lines(printed)] == expected
    variables = dict(COORDINATOR="node0:1234", NUM_NODES="3", NODE_RANK="2")
    assert stubs.run("gpu.sh", command, *ARGS, **variables).returncode == 0
    assert bert_jax_calls(stubs) == [(["bert-jax", command, *ARGS], multi("node0:1234", 3, 2))]


def test_slurm_tasks_find_rank_and_coordinator(stubs):
    """Inside `srun`: every task gets the first host of the node list as coordinator, the task
    count and its own SLURM_PROCID, and the same arguments."""
    runs = []
    for rank in range(4):
        slurm = dict(SLURM_NTASKS="4", SLURM_PROCID=str(rank), SLURM_JOB_NODELIST="gpu[7-10]")
        assert stubs.run("gpu.sh", "pretrain", *ARGS, **slurm).returncode == 0
        runs += bert_jax_calls(stubs)
        printed = stubs.run("gpu.sh", "--dry-run", "pretrain", *ARGS, **slurm)
        assert [as_executed(words) for words in dry_run_lines(printed)] == runs[-1:]
    assert runs == [(["bert-jax", "pretrain", *ARGS], multi("gpu7:12355", 4, r)) for r in range(4)]
    slurm = dict(SLURM_NTASKS="2", SLURM_PROCID="1", SLURM_JOB_NODELIST="gpu[3-4]")
    assert stubs.run("gpu.sh", "pretrain", *ARGS, COORDINATOR_PORT="999", **slurm).returncode == 0
    assert bert_jax_calls(stubs) == [(["bert-jax", "pretrain", *ARGS], multi("gpu3:999", 2, 1))]
    # Explicit options win over SLURM's variables.
    done = stubs.run(
        "gpu.sh", "--coordinator=h:1", "--num_nodes=2", "--node_rank=0", "pretrain", *ARGS, **slurm
    )
    assert done.returncode == 0, done.stderr
    assert bert_jax_calls(stubs) == [(["bert-jax", "pretrain", *ARGS], multi("h:1", 2, 0))]


def test_slurm_submission_runs_one_task_per_node(stubs):
    options = ["--slurm", "--nodes=3", "--gpus_per_node=8", "--srun_arg=--time=1:00:00"]
    done = stubs.run("gpu.sh", *options, "finetune", *ARGS)
    assert done.returncode == 0, done.stderr
    calls = stubs.calls()
    srun = calls[0]["argv"]
    assert srun[:6] == [
        "srun", "--nodes=3", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--gpus-per-node=8",
        "--time=1:00:00",
    ]  # fmt: skip
    assert srun[6].endswith("/launch/gpu.sh") and srun[7:] == ["finetune", *ARGS]
    runs = [(c["argv"], c["env"]) for c in calls if c["argv"][0] == "bert-jax"]
    assert [argv for argv, _ in runs] == [["bert-jax", "finetune", *ARGS]] * 3
    assert [env["JAX_PROCESS_ID"] for _, env in runs] == ["0", "1", "2"]
    assert {env["JAX_COORDINATOR_ADDRESS"] for _, env in runs} == {"gpu1:12355"}
    assert {env["JAX_NUM_PROCESSES"] for _, env in runs} == {"3"}
    # The dry run prints the srun line, and nothing runs.
    printed = dry_run_lines(stubs.run("gpu.sh", "--dry-run", *options, "finetune", *ARGS))
    assert printed == [srun]
    assert stubs.calls() == []


def test_single_process_commands_run_once(stubs):
    """`prepare` writes its shards once: on several machines only rank 0 runs it, alone."""
    args = ["--input=corpus/*.txt", "--output=shards", "--vocab=vocab.txt"]
    done = stubs.run("gpu.sh", "--slurm", "--nodes=3", "prepare", *args)
    assert done.returncode == 0, done.stderr
    assert bert_jax_calls(stubs) == [(["bert-jax", "prepare", *args], {})]
    assert done.stderr.count("runs on rank 0 only") == 2
    printed = stubs.run(
        "gpu.sh", "--dry-run", "--coordinator=h:1", "--num_nodes=2", "--node_rank=1", "prepare"
    )
    assert printed.returncode == 0 and printed.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "pretrain"], "unknown option --bogus"),
        (["--config=configs/pretrain.py:base"], "options of bert-jax go after its command"),
        ([], "expected a bert-jax command"),
        (["--num_nodes=2", "--node_rank=0", "pretrain"], "needs --coordinator=HOST:PORT"),
        (["--num_nodes=2", "--coordinator=h:1", "pretrain"], "needs --node_rank"),
        (["--num_nodes=2", "--coordinator=h:1", "--node_rank=2", "pretrain"], "expected 0 to 1"),
        (["--num_nodes=2", "--coordinator=h", "--node_rank=0", "pretrain"], "expected HOST:PORT"),
        (["--num_nodes=two", "pretrain"], "--num_nodes=two: expected a positive number"),
        (["--slurm", "--nodes=0", "pretrain"], "--nodes=0: expected a positive number"),
    ],
)
def test_bad_options_fail_with_one_line(stubs, args, message):
    assert_one_line_error(stubs, "gpu.sh", args, message)


def test_help_documents_every_option(stubs):
    parsed, _ = help_options(stubs, "gpu.sh")
    assert parsed >= {"--coordinator", "--num_nodes", "--node_rank", "--slurm", "--dry-run"}


def test_a_dry_run_asked_last_runs_nothing_either(stubs):
    for options in ([], ["--slurm", "--nodes=2"]):
        first = stubs.run("gpu.sh", "--dry-run", *options, "pretrain", *ARGS)
        last = stubs.run("gpu.sh", *options, "pretrain", *ARGS, "--dry-run")
        assert dry_run_lines(last) == dry_run_lines(first)
        assert "--dry-run" not in dry_run_lines(last)[0]
    assert stubs.calls() == []
