"""launch/tpu_vm.sh against a stand-in `gcloud`: the commands each subcommand sends, on-demand,
Spot and queued TPUs, and, with fake workers (a home directory each, where `gcloud ... ssh` runs
the remote command in bash), what those commands do on every worker. --dry-run must print
exactly what a real run executes."""

import os
import pathlib
import re
import signal
import time

import pytest

from tests.launch.stubs import Stubs, assert_one_line_error, dry_run_lines, help_options

WHERE = ["my-pod", "us-east5-a"]
# Spaces, a glob and quotes: they must reach bert-jax unchanged through two shells.
ARGS = [
    "--config=configs/pretrain.py:base",
    "--workdir=gs://b/runs/my run",
    "--config.data.data_dir=gs://b/shards/*",
    '--config.name=it\'s "quoted" $HOME',
]
SSH = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-pod", "--zone=us-east5-a"]
QUEUED = ["gcloud", "compute", "tpus", "queued-resources"]

# A worker's bert-jax: prints its arguments one per line, then runs for a while (exit 0 on
# SIGTERM, as a run that saved its checkpoint) or finishes after FAKE_RUN_TENTHS tenths of a second.
FAKE_BERT_JAX = """#!/usr/bin/env bash
printf 'arg: %s\\n' "$@"
trap 'echo "saved, stopped by SIGTERM"; exit 0' TERM
for ((i = 0; i < ${FAKE_RUN_TENTHS:-300}; i++)); do sleep 0.1; done
echo finished
"""
FAKE_PIP = """#!/usr/bin/env bash
echo "$*" >> ~/pip.log
"""


@pytest.fixture
def stubs(tmp_path):
    stubs = Stubs(tmp_path)
    yield stubs
    # End the fake runs this test started (each worker's pid file names its own).
    for pid_file in tmp_path.glob("worker*/bert-jax.pid"):
        pid = int(pid_file.read_text())
        if pathlib.Path(f"/proc/{pid}").exists() and "bert-jax" in _cmdline(pid):
            os.kill(pid, signal.SIGKILL)


def gone(home: pathlib.Path) -> bool:
    """Whether the run a worker started has ended and been reaped (`kill -0` is true until then)."""
    return not pathlib.Path(f"/proc/{(home / 'bert-jax.pid').read_text().strip()}").exists()


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def add_workers(stubs, count, venv=True):
    """Fake workers: HOME directories with, when `venv`, an installed fake bert-jax and pip."""
    homes = []
    for index in range(count):
        home = stubs.dir / f"worker{index}"
        homes.append(home)
        if not venv:
            home.mkdir()
            continue
        bin_dir = home / "bert-jax" / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        for name, text in (("bert-jax", FAKE_BERT_JAX), ("pip", FAKE_PIP)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
    return homes


def gcloud_calls(stubs):
    return [call["argv"] for call in stubs.calls() if call["argv"][0] == "gcloud"]


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def same_archive(argv):
    """The temporary directory of the archive differs between two runs; the rest must not."""
    return [re.sub(r"^/\S*/tmp\.\w+", "TMPDIR", word) for word in argv]


@pytest.mark.parametrize(
    ("line", "states"),
    [
        (["up", *WHERE, "--accelerator=v5p-128", "--queued", "--spot", "--delete"], ["ABSENT"]),
        (["up", *WHERE, "--accelerator=v4-8"], ["ABSENT"]),
        (["up", *WHERE, "--accelerator=v6e-8", "--spot", "--delete", "--worker=0"], ["ABSENT"]),
        (["create", *WHERE, "--accelerator=v5litepod-16", "--queued", "--best-effort"], []),
        (["run", *WHERE, "--worker=all"], []),
        (["logs", *WHERE, "--worker=3"], []),
        (["stop", *WHERE], []),
        (["delete", *WHERE, "--queued"], []),
        (["delete", *WHERE], []),
    ],
)
def test_dry_run_prints_exactly_the_commands_a_run_executes(stubs, line, states):
    """Every gcloud line printed by --dry-run, split as the shell would, equals the argv the
    real run gave gcloud, in the same order; and the dry run calls nothing."""
    line = line + (["pretrain", *ARGS] if line[0] in ("up", "run") else [])
    printed = dry_run_lines(stubs.run("tpu_vm.sh", "--dry-run", *line))
    assert stubs.calls() == []
    stubs.states("tpu-vm", *states)
    stubs.states("queued-resources", "ABSENT", "ACTIVE")
    done = stubs.run("tpu_vm.sh", *line)
    assert done.returncode == 0, done.stderr
    executed = [same_archive(argv) for argv in gcloud_calls(stubs)]
    assert [same_archive(words) for words in printed if words[0] == "gcloud"] == executed
    if line[0] == "up":  # and the local commands: the archive of this checkout, then its removal
        tar = [words for words in printed if words[0] == "git"]
        assert len(tar) == 1 and "|" in tar[0] and tar[0][tar[0].index("|") + 1] == "tar"
        assert sum(words[:2] == ["rm", "-r"] for words in printed) == 1


def test_up_queued_spot_waits_for_active_and_deletes_at_the_end(stubs):
    stubs.states("queued-resources", "ABSENT", "WAITING_FOR_RESOURCES", "PROVISIONING", "ACTIVE")
    line = ["up", *WHERE, "--accelerator=v5p-128", "--queued", "--spot", "--valid-for=6h"]
    done = stubs.run("tpu_vm.sh", *line, "--delete", "pretrain", *ARGS)
    assert done.returncode == 0, done.stderr
    calls = gcloud_calls(stubs)
    describe = [*QUEUED, "describe", "my-pod", "--zone=us-east5-a", "--format=value(state.state)"]
    create = [
        *QUEUED, "create", "my-pod", "--zone=us-east5-a", "--node-id=my-pod",
        "--accelerator-type=v5p-128", "--runtime-version=v2-alpha-tpuv5", "--spot",
        "--valid-until-duration=6h",
    ]  # fmt: skip
    assert calls[:5] == [describe, create, describe, describe, describe]
    assert "WAITING_FOR_RESOURCES" in done.stderr and "PROVISIONING" in done.stderr
    steps = [argv[4] for argv in calls[5:]]
    assert steps == ["scp", "ssh", "ssh", "ssh", "delete"]
    assert calls[-1] == [*QUEUED, "delete", "my-pod", "--zone=us-east5-a", "--force", "--quiet"]
    # Copy, install and run on every worker; follow worker 0.
    workers = [next(w for w in argv if w.startswith("--worker=")) for argv in calls[5:9]]
    assert workers == ["--worker=all", "--worker=all", "--worker=all", "--worker=0"]


def test_up_deletes_only_when_asked(stubs):
    stubs.states("tpu-vm", "ABSENT")
    done = stubs.run("tpu_vm.sh", "up", *WHERE, "--accelerator=v4-8", "pretrain", *ARGS)
    assert done.returncode == 0, done.stderr
    calls = gcloud_calls(stubs)
    assert calls[1] == [
        "gcloud", "compute", "tpus", "tpu-vm", "create", "my-pod", "--zone=us-east5-a",
        "--accelerator-type=v4-8", "--version=tpu-ubuntu2204-base",
    ]  # fmt: skip
    assert not any("delete" in argv for argv in calls)


def test_best_effort_is_a_gcloud_alpha_request(stubs):
    stubs.states("queued-resources", "ABSENT", "ACTIVE")
    done = stubs.run(
        "tpu_vm.sh", "create", *WHERE, "--accelerator=v6e-8", "--queued", "--best-effort"
    )
    assert done.returncode == 0, done.stderr
    (create,) = [argv for argv in gcloud_calls(stubs) if "create" in argv]
    assert create[:6] == ["gcloud", "alpha", "compute", "tpus", "queued-resources", "create"]
    assert "--best-effort" in create and "--spot" not in create


def test_create_reuses_a_ready_tpu_and_refuses_a_preempted_one(stubs):
    stubs.states("tpu-vm", "READY")
    done = stubs.run("tpu_vm.sh", "create", *WHERE, "--accelerator=v4-8", "--spot")
    assert done.returncode == 0 and "reusing it" in done.stderr
    assert [argv[4] for argv in gcloud_calls(stubs)] == ["describe"]
    stubs.states("tpu-vm", "PREEMPTED")
    done = stubs.run("tpu_vm.sh", "create", *WHERE, "--accelerator=v4-8", "--spot")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "launch/tpu_vm.sh: error: TPU my-pod in us-east5-a is PREEMPTED, not READY: delete it "
        "(launch/tpu_vm.sh delete my-pod us-east5-a) and create it again"
    ]
    assert [argv[4] for argv in gcloud_calls(stubs)] == ["describe"]


def test_a_failed_queued_request_stops_the_wait(stubs):
    stubs.states("queued-resources", "WAITING_FOR_RESOURCES", "FAILED")
    done = stubs.run("tpu_vm.sh", "up", *WHERE, "--accelerator=v5p-8", "--queued", "--delete",
                     "pretrain", *ARGS)  # fmt: skip
    assert done.returncode == 2
    assert "queued resource my-pod in us-east5-a is FAILED" in done.stderr.splitlines()[-1]
    # It existed already: no create; nothing is installed, run or deleted.
    assert [argv[4] for argv in gcloud_calls(stubs)] == ["describe", "describe"]


def test_run_starts_the_same_command_on_every_worker_and_stop_saves(stubs):
    homes = add_workers(stubs, 4)
    done = stubs.run("tpu_vm.sh", "run", *WHERE, "pretrain", *ARGS)
    assert done.returncode == 0, done.stderr
    (ssh,) = gcloud_calls(stubs)
    assert ssh[: len(SSH)] == SSH and "--worker=all" in ssh
    assert done.stdout.count("started bert-jax pretrain") == 4
    logs = [home / "bert-jax.log" for home in homes]
    wait_for(lambda: all(log.exists() and log.read_text().count("arg: ") == 5 for log in logs))
    for log in logs:  # the argv every worker's bert-jax got, exactly
        assert log.read_text().splitlines() == [f"arg: {a}" for a in ["pretrain", *ARGS]]
    # A second run beside a live one is refused on every worker.
    again = stubs.run("tpu_vm.sh", "run", *WHERE, "pretrain", *ARGS)
    assert again.returncode != 0 and again.stderr.count("is still running") == 4
    stubs.calls()
    done = stubs.run("tpu_vm.sh", "stop", *WHERE)
    assert done.returncode == 0, done.stderr
    (ssh,) = gcloud_calls(stubs)
    assert "--worker=all" in ssh and done.stdout.count("sent SIGTERM") == 4
    wait_for(lambda: all("stopped by SIGTERM" in log.read_text() for log in logs))
    wait_for(lambda: all(gone(home) for home in homes))
    # The run is over: stop finds nothing, logs prints the whole log and returns.
    assert stubs.run("tpu_vm.sh", "stop", *WHERE).stdout.count("no bert-jax running") == 4
    shown = stubs.run("tpu_vm.sh", "logs", *WHERE, "--worker=2")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == logs[2].read_text()


def test_single_host_commands_run_on_worker_0_unless_told(stubs):
    homes = add_workers(stubs, 3)
    args = ["--input=gs://b/corpus/*.txt", "--output=gs://b/shards", "--vocab=gs://b/vocab.txt"]
    done = stubs.run("tpu_vm.sh", "run", *WHERE, "prepare", *args, FAKE_RUN_TENTHS="0")
    assert done.returncode == 0, done.stderr
    (ssh,) = gcloud_calls(stubs)
    assert "--worker=0" in ssh
    assert [(home / "bert-jax.pid").exists() for home in homes] == [True, False, False]
    wait_for(lambda: gone(homes[0]))
    assert "finished" in (homes[0] / "bert-jax.log").read_text()
    done = stubs.run("tpu_vm.sh", "run", *WHERE, "--worker=all", "prepare", *args)
    assert done.returncode == 0, done.stderr
    assert all((home / "bert-jax.pid").exists() for home in homes)


def test_up_installs_on_every_worker_and_follows_the_run_to_its_end(stubs):
    """The whole path on fake workers: the archive of this checkout is unpacked in each, the
    `tpu` extra installed, the run started, worker 0's log streamed until the run finishes;
    then, with --delete, the TPU VM is deleted."""
    homes = add_workers(stubs, 2)
    stubs.states("tpu-vm", "ABSENT")
    line = ["up", *WHERE, "--accelerator=v4-16", "--delete", "finetune", *ARGS]
    done = stubs.run("tpu_vm.sh", *line, FAKE_RUN_TENTHS="3")
    assert done.returncode == 0, done.stderr
    calls = stubs.calls()
    (scp,) = [call for call in calls if "scp" in call["argv"]]
    assert "pyproject.toml" in scp["archive"] and "launch/tpu_vm.sh" in scp["archive"]
    assert not any(name.startswith((".venv/", ".git/")) for name in scp["archive"])
    for home in homes:
        assert (home / "bert-jax" / "pyproject.toml").exists()
        assert not (home / "bert-jax.tar.gz").exists()
        pip = (home / "pip.log").read_text().splitlines()
        assert pip == ["install -q -U pip", "install -q -e .[tpu]"]
        assert "installed" in done.stdout
    # The log streamed to the end, then the delete.
    assert done.stdout.endswith("".join(f"arg: {a}\n" for a in ["finetune", *ARGS]) + "finished\n")
    assert calls[-1]["argv"][4:] == ["delete", "my-pod", "--zone=us-east5-a", "--quiet"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus", *WHERE], "unknown command bogus"),
        (["run", *WHERE, "--bogus", "pretrain"], "unknown option --bogus"),
        (["run", *WHERE, "--config=x"], "options of bert-jax go after its command"),
        (["run", *WHERE], "run needs a bert-jax command"),
        (["stop", "my-pod"], "expected COMMAND NAME ZONE"),
        (["stop", *WHERE, "pretrain"], "stop takes no bert-jax command"),
        (["create", *WHERE], "create needs --accelerator=TYPE"),
        (["create", *WHERE, "--accelerator=x9"], "no default TPU software version"),
        (["logs", *WHERE, "--worker=first"], "--worker=first: expected all or a number"),
        (["up", *WHERE, "--spot", "--best-effort", "pretrain"], "choose one"),
    ],
)
def test_bad_options_fail_with_one_line(stubs, args, message):
    assert_one_line_error(stubs, "tpu_vm.sh", args, message)


def test_help_documents_every_command_and_option(stubs):
    parsed, text = help_options(stubs, "tpu_vm.sh")
    assert parsed >= {"--accelerator", "--spot", "--queued", "--delete", "--dry-run"}
    for command in ("create", "install", "run", "logs", "stop", "delete", "up"):
        assert re.search(rf"^  {command} ", text, re.M), f"{command} is not in --help"


@pytest.mark.parametrize("command", ["run", "up"])
def test_a_dry_run_asked_last_runs_nothing_either(stubs, command):
    line = [command, *WHERE, "--accelerator=v4-8", "pretrain", *ARGS]
    first = stubs.run("tpu_vm.sh", "--dry-run", *line)
    last = stubs.run("tpu_vm.sh", *line, "--dry-run")
    assert stubs.calls() == []
    same = [same_archive(words) for words in dry_run_lines(first)]
    assert [same_archive(words) for words in dry_run_lines(last)] == same
    assert not any("--dry-run" in word for words in same for word in words)
