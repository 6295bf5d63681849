"""Stand-ins for `gcloud`, `srun`, `scontrol` and `bert-jax` that record every call, for running
the launch scripts for real without a cloud, a cluster or a GPU.

Each stub appends one JSON line {"argv": [...], "env": {JAX_* and SLURM_* variables}, ...} to
DIR/calls.jsonl. What they answer:
  gcloud ... describe   the next word of DIR/tpu-vm.states or DIR/queued-resources.states
                        (the last word repeats; ABSENT, or no file, fails as for a missing TPU)
  gcloud ... scp        records the archive's member names; with workers, copies it to each
  gcloud ... ssh        with workers (DIR/worker0, worker1, ...), runs --command in bash with
                        HOME set to each worker --worker names, one after the other
  srun                  runs its command once per node, with SLURM_NTASKS/PROCID/JOB_NODELIST
  scontrol              `show hostnames gpu[1-3]` -> gpu1 gpu2 gpu3, one per line
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

_COMMON = """
import json, os, pathlib, re, shutil, subprocess, sys, tarfile
DIR = pathlib.Path({directory!r})
ARGS = sys.argv[1:]
CALL = {{"argv": [{name!r}, *ARGS], "env": {{
    k: v for k, v in os.environ.items() if k.startswith(("JAX_", "SLURM_"))}}}}

def log():
    with open(DIR / "calls.jsonl", "a") as f:
        f.write(json.dumps(CALL) + "\\n")

def flag(name):
    for a in ARGS:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None

def expand(nodelist):
    m = re.fullmatch(r"(\\w+)\\[(\\d+)-(\\d+)\\]", nodelist)
    if not m:
        return nodelist.split(",")
    return [f"{{m[1]}}{{i}}" for i in range(int(m[2]), int(m[3]) + 1)]
"""

_GCLOUD = """
words = [a for a in ARGS if not a.startswith("-")]
workers = sorted(DIR.glob("worker*"), key=lambda p: int(p.name[6:]))
code = 0
if "describe" in words:
    kind = "queued-resources" if "queued-resources" in words else "tpu-vm"
    script = DIR / f"{kind}.states"
    states = script.read_text().split() if script.exists() else ["ABSENT"]
    if len(states) > 1:
        script.write_text(" ".join(states[1:]))
    log()
    if states[0] == "ABSENT":
        sys.exit("ERROR: (gcloud) NOT_FOUND")
    print(states[0])
    sys.exit(0)
if "scp" in words:
    source = words[words.index("scp") + 1]
    with tarfile.open(source) as tar:
        CALL["archive"] = sorted(tar.getnames())
    for home in workers:
        shutil.copy(source, home / "bert-jax.tar.gz")
if "ssh" in words and workers:
    target = flag("--worker")
    chosen = workers if target == "all" else [DIR / f"worker{target}"]
    CALL["workers"] = [home.name for home in chosen]
    for home in chosen:
        env = dict(os.environ, HOME=str(home))
        code = max(code, subprocess.run(["bash", "-c", flag("--command")], env=env).returncode)
log()
sys.exit(code)
"""

_SRUN = """
log()
nodes = int(flag("--nodes"))
command = ARGS[next(i for i, a in enumerate(ARGS) if not a.startswith("-")):]
code = 0
for rank in range(nodes):
    env = dict(os.environ, SLURM_NTASKS=str(nodes), SLURM_PROCID=str(rank),
               SLURM_JOB_NODELIST=f"gpu[1-{nodes}]")
    code = max(code, subprocess.run(command, env=env).returncode)
sys.exit(code)
"""

_SCONTROL = """
log()
assert ARGS[:2] == ["show", "hostnames"], ARGS
print("\\n".join(expand(ARGS[2])))
"""

_BERT_JAX = """
log()
"""

STUBS = {"gcloud": _GCLOUD, "srun": _SRUN, "scontrol": _SCONTROL, "bert-jax": _BERT_JAX}

# Variables of the caller's shell that would change what the scripts do.
_SCRUBBED = ("SLURM_", "JAX_", "COORDINATOR", "NUM_NODES", "NODE_RANK", "TPU_POLL_SECONDS")


LAUNCH = pathlib.Path(__file__).resolve().parents[2] / "launch"


class Stubs:
    """A directory of stubs first on PATH; `run` a launch script against them."""

    def __init__(self, directory: pathlib.Path):
        self.dir = directory
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        for name, body in STUBS.items():
            script = bin_dir / name
            source = _COMMON.format(directory=str(directory), name=name) + body
            script.write_text(f"#!{sys.executable}\n{source}")
            script.chmod(0o755)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
        self.env["PATH"] = f"{bin_dir}:{self.env['PATH']}"
        self.env["TPU_POLL_SECONDS"] = "0"

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(LAUNCH / script), *args],
            env=dict(self.env, **env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[dict]:
        """The calls recorded since the last `calls()`, oldest first."""
        log = self.dir / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        log.unlink()
        return calls

    def states(self, kind: str, *states: str) -> None:
        """What `gcloud compute tpus KIND describe` answers, call after call."""
        (self.dir / f"{kind}.states").write_text(" ".join(states))


def dry_run_lines(done: subprocess.CompletedProcess) -> list[list[str]]:
    """The commands a --dry-run printed, each split as the shell would."""
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines()]


def assert_one_line_error(stubs: Stubs, script: str, args: list[str], message: str) -> None:
    """`script ARGS` fails with exit status 2 and one line naming the script and `message`,
    before calling anything: with --dry-run first or last, the same."""
    for line in ([*args, "--dry-run"], ["--dry-run", *args], args):
        done = stubs.run(script, *line)
        assert done.returncode == 2
        assert done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr
        assert done.stderr.startswith(f"launch/{script}: error: ")
    assert stubs.calls() == []


def help_options(stubs: Stubs, script: str) -> tuple[set[str], str]:
    """(the --options the script's option loop parses, its --help text); every one of those
    options must be in the help: asserted here."""
    done = stubs.run(script, "--help")
    assert done.returncode == 0, done.stderr
    parsed = set(re.findall(r"^\s+(--[a-z_-]+)(?:=\*)?\)", (LAUNCH / script).read_text(), re.M))
    for option in parsed:
        assert re.search(rf"^  {option}\b", done.stdout, re.M), f"{option} is not in --help"
    return parsed, done.stdout
