"""Launch scripts, run against stand-in `bert-jax`, `gcloud` and `scontrol` commands that
record their arguments: what each script would run, for one machine, several and a TPU VM."""

import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN_ARGS = ["--config=configs/pretrain.py:base", "--workdir=gs://b/run", "--config.mesh.fsdp=4"]


def fake_commands(directory: pathlib.Path) -> dict:
    """PATH with `bert-jax`, `gcloud` and `scontrol` that log their arguments."""
    log = directory / "calls.log"
    for name in ("bert-jax", "gcloud"):
        script = directory / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> {log}\n')
        script.chmod(0o755)
    scontrol = directory / "scontrol"
    scontrol.write_text("#!/bin/sh\nprintf 'node7\\nnode8\\n'\n")
    scontrol.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{directory}:{env['PATH']}"
    return {"env": env, "log": log}


def run(script, args, fake, **extra_env):
    env = dict(fake["env"], **extra_env)
    done = subprocess.run([str(REPO / "launch" / script), *args], env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = fake["log"].read_text().splitlines()
    fake["log"].unlink()
    return calls


def test_gpu_one_machine_passes_the_run_flags_only(tmp_path):
    fake = fake_commands(tmp_path)
    assert run("gpu.sh", RUN_ARGS, fake) == ["bert-jax pretrain " + " ".join(RUN_ARGS)]


def test_gpu_several_machines_from_options_and_from_slurm(tmp_path):
    fake = fake_commands(tmp_path)
    options = ["--coordinator=node0:1234", "--num_nodes=2", "--node_rank=1"]
    expected = ("bert-jax pretrain --coordinator_address={} --num_processes=2 --process_id=1 "
                + " ".join(RUN_ARGS))  # fmt: skip
    assert run("gpu.sh", options + RUN_ARGS, fake) == [expected.format("node0:1234")]
    slurm = dict(SLURM_NTASKS="2", SLURM_PROCID="1", SLURM_JOB_NODELIST="node[7-8]")
    assert run("gpu.sh", RUN_ARGS, fake, **slurm) == [expected.format("node7:12355")]


def test_tpu_vm_runs_the_same_command_on_every_worker(tmp_path):
    fake = fake_commands(tmp_path)
    (call,) = run("tpu_vm.sh", ["run", "my-tpu", "us-east5-a", *RUN_ARGS], fake)
    assert call.startswith("gcloud compute tpus tpu-vm ssh my-tpu --zone=us-east5-a --worker=all")
    assert ".venv/bin/bert-jax pretrain " + " ".join(RUN_ARGS) in call
    (stop,) = run("tpu_vm.sh", ["stop", "my-tpu", "us-east5-a"], fake)
    assert "--worker=all" in stop and "kill -TERM" in stop
