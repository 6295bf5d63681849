"""`bert-jax COMMAND --help` for every command and benchmark, the config fields in the training
commands' help, and one-line errors for a bad option on every command.

Commands run in this process through `bert_jax.main.main` (fast); two run as a user runs them, in
a subprocess. The options and config comments the help must show are read here from the
source files with regular expressions, independently of the help's own parser (`ast`/`tokenize`
in bert_jax/cli/config_help.py).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bert_jax import main as cli
from bert_jax.cli import bench, config_help
from tests.conftest import REPO

COMMANDS = list(cli.COMMANDS)
BENCHMARKS = [["bench", name] for name in bench.BENCHMARKS]
TRAINING = ("pretrain", "finetune")
CONFIG = {
    "pretrain": f"{REPO}/configs/pretrain.py:tiny",
    "finetune": f"{REPO}/configs/glue.py:mrpc",
    "plan": f"{REPO}/configs/pretrain.py:tiny",
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def flat(text: str) -> str:
    """Whitespace runs as one space: help wraps lines wherever the terminal ends."""
    return " ".join(text.split())


def source_of(argv: list[str]) -> str:
    """The source text that defines the options of `bert-jax *argv`."""
    if argv[0] == "bench" and len(argv) > 1:
        return (REPO / "bert_jax" / "bench" / f"{argv[1]}.py").read_text()
    module = cli.COMMANDS[argv[0]][0]
    text = (REPO / "bert_jax" / "cli" / f"{module}.py").read_text()
    if argv[0] in TRAINING:
        text += (REPO / "bert_jax" / "cli" / "training.py").read_text()
    return text


def defined_options(source: str) -> set[str]:
    """Every option string in an `add_argument(...)` call of `source`."""
    found = set()
    for call in re.finditer(r"add_argument\(\s*((?:\"-[-\w]+\",\s*)+)", source):
        found.update(re.findall(r"\"(-[-\w]+)\"", call.group(1)))
    return found


def common_comments() -> dict[str, str]:
    """`section.field` -> its trailing comment in configs/common.py, by the file's own naming:
    `def SECTION_config` builds a section, `config.FIELD` in get_config is top level."""
    out, section = {}, None
    for line in (REPO / "configs" / "common.py").read_text().splitlines():
        if line.startswith("def get_config("):
            section = ""
        elif match := re.match(r"def (\w+)_config\(", line):
            section = match.group(1)
        elif match := re.match(r"\s+(\w+)\.(\w+) = .*?  # (.+)$", line):
            name = f"{section}.{match.group(2)}" if section else match.group(2)
            out[name] = match.group(3).strip()
    return out


@pytest.mark.parametrize("argv", [[c] for c in COMMANDS] + BENCHMARKS, ids=" ".join)
def test_help_explains_with_an_example_and_every_option(argv, capsys):
    code, out, err = run(capsys, *argv, "--help")
    assert code == 0, err
    prog = "bert-jax " + " ".join(argv)
    assert out.startswith(f"usage: {prog}"), out[:200]
    description = re.split(r"\n(?:positional arguments|options):\n", out)[0].split("\n\n", 1)[1]
    assert len(description.split()) >= 25, f"a few sentences on what {prog} does: {description!r}"
    examples = out.split("\nexamples:\n", 1)[1]
    assert re.search(rf"^  (.*\| )?{prog}\b", examples, re.M), f"no `{prog} ...` example"
    options = defined_options(source_of(argv))
    assert options or argv == ["bench"], f"no options found in the source of {prog}"
    missing = sorted(o for o in options if not re.search(rf"(^|[\s,\[]){o}\b", out))
    assert not missing, f"{prog} --help does not show {missing}"
    assert cli.main(["help", *argv]) == 0 and capsys.readouterr().out == out


@pytest.mark.parametrize("bad", ["--bogus", "--config.train.batchsize=1"])
@pytest.mark.parametrize("argv", [[c] for c in COMMANDS] + BENCHMARKS, ids=" ".join)
def test_a_bad_option_or_override_is_one_line_naming_it(argv, bad, capsys):
    config = [f"--config={CONFIG[argv[0]]}"] if argv[0] in CONFIG else []
    code, out, err = run(capsys, *argv, *config, bad)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"bert-jax {argv[0]}: error: "), err
    assert bad in err
    if argv[0] in TRAINING and bad.startswith("--config."):  # the loader names the field
        assert "has no field 'train.batchsize' (train has: accum_steps, batch_size" in err


def test_top_level_help_lists_every_command_in_one_line(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name, (_, summary) in cli.COMMANDS.items():
        assert re.search(rf"^  {name} +{re.escape(summary)}$", out, re.M), name
    assert "bert-jax COMMAND --help" in out and "bert-jax help COMMAND" in out
    assert run(capsys, "help")[1] == out
    code, out, err = run(capsys, "pretrian")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("bert-jax: error: unknown command 'pretrian'")


@pytest.mark.parametrize("command", TRAINING)
def test_training_help_lists_every_common_field_with_its_comment(command, capsys):
    comments = common_comments()
    assert comments["train.batch_size"] == (
        "global sequences per optimizer step, summed over all hosts"
    )  # the reference parse itself works
    assert {"seed", "model.size", "data.mode", "mesh.fsdp", "checkpoint.keep_last"} <= set(comments)
    code, out, err = run(capsys, command, "--help")
    assert code == 0, err
    text = flat(out)
    for name, comment in comments.items():
        assert f" {name} {comment}" in text, name
    sections = re.findall(r"^(\w[\w ]*):", out.split("config fields", 1)[1], re.M)
    assert sections[:7] == [
        "top level", "model", "data", "train", "optimizer", "mesh", "checkpoint",
    ]  # fmt: skip
    for option in ("--config", "--workdir", "--coordinator_address", "--num_processes"):
        assert option in out


def test_config_help_shows_the_values_and_the_task_fields(capsys):
    spec = f"{REPO}/configs/squad.py:v2.0"
    code, out, err = run(
        capsys, "finetune", f"--config={spec}", "--config.train.batch_size=8", "-h"
    )
    assert code == 0, err
    text = flat(out)
    assert f"config fields of {spec}" in text
    assert " train.batch_size = 8 " in text  # the override, not squad.py's 48
    assert " task = 'squad/v2.0'" in text and " data.doc_stride = 128 " in text
    squad = (REPO / "configs" / "squad.py").read_text()
    n_best = re.search(r"d\.n_best = (\d+)  # (.+)", squad)
    assert f" decode.n_best = {n_best.group(1)} {n_best.group(2)}" in text
    # A comment block above a field without a trailing comment is its meaning.
    assert ' decode.null_threshold = None v2.0: predict "no answer" when null score' in text
    swag = flat(run(capsys, "finetune", f"--config={REPO}/configs/swag.py", "--help")[1])
    assert " data.pad_multiple = 32 " in swag and " data.tfds " not in swag  # swag deletes it


def test_help_of_a_bad_config_is_the_config_error(capsys):
    code, out, err = run(capsys, "pretrain", f"--config={REPO}/configs/pretrain.py:huge", "--help")
    assert code == 2 and out == "" and "unknown size 'huge'" in err and err.count("\n") == 1


def test_overrides_with_a_separate_value_reach_the_config():
    from bert_jax.cli import pretrain, training

    parser = pretrain._parser()
    args = training.parse(
        ["--config", CONFIG["pretrain"], "--config.train.batch_size", "8",
         "--config.data.synthetic", "--workdir=/tmp/w", "--config.optimizer.b1", "-0.5"],
        parser,
    )  # fmt: skip
    assert (args.config.train.batch_size, args.config.data.synthetic) == (8, True)
    assert args.config.optimizer.b1 == -0.5 and args.workdir == "/tmp/w"
    with pytest.raises(AttributeError):  # still locked
        args.config.train.new_field = 1


def test_comment_reader_on_a_hand_written_config(tmp_path):
    """Aliases, a sibling file's builder, a leading block, a note, a continued comment, and a
    later comment replacing an earlier one; fields set without a comment keep theirs."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "base.py").write_text(
        "import ml_collections\n\n\n"
        "def opt_config():\n"
        '    """How steps are taken."""\n'
        "    o = ml_collections.ConfigDict()\n"
        "    o.lr = 0.1  # peak learning rate\n"
        "    # Schedule:\n"
        "    o.warmup = 10  # steps of warmup\n"
        "    return o\n\n\n"
        "def get_config():\n"
        "    config = ml_collections.ConfigDict()\n"
        "    config.seed = 0  # init and dropout (the same on every\n"
        "    # host)\n"
        "    config.opt = opt_config()\n"
        "    return config\n"
    )
    (configs / "task.py").write_text(
        "from configs import base\n\n\n"
        "def get_config(arg=''):\n"
        "    config = base.get_config()\n"
        "    o = config.opt\n"
        "    o.lr = 0.01  # the task's own words\n"
        "    o.warmup = 5\n"
        "    if arg:\n"
        "        # what is trained\n"
        "        config.task = arg\n"
        "    return config\n"
    )
    found = config_help.config_fields(configs / "task.py")
    assert list(found.fields) == ["seed", "opt.lr", "opt.warmup", "task"]
    meanings = {name: field.meaning for name, field in found.fields.items()}
    assert meanings == {
        "seed": "init and dropout (the same on every host)",
        "opt.lr": "the task's own words",
        "opt.warmup": "steps of warmup",
        "task": "what is trained",
    }
    assert found.fields["opt.warmup"].note == "Schedule:"
    assert found.sections == {"opt": "How steps are taken."}


def test_as_a_user_runs_it():
    """The installed entry point's module, in a fresh process: help exits 0, a typo exits 2
    with one line."""
    command = [sys.executable, "-m", "bert_jax"]
    shown = subprocess.run([*command, "pretrain", "--help"], cwd=REPO, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert shown.returncode == 0 and "train.batch_size" in shown.stdout, shown.stderr
    typo = subprocess.run([*command, "tokenize", "--vocab=v.txt", "--specal"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert typo.returncode == 2 and typo.stdout == ""
    assert typo.stderr == "bert-jax tokenize: error: unrecognized arguments: --specal\n"
