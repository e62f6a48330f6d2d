"""Every command the docs show a reader runs through the parser of the program it names.

The documents: README.md, docs/**/*.md, state_machines/README.md, sample_data/README.md and the Terraform module
READMEs. The commands: every line of a ```bash/sh/shell/console block (continuations joined, `|`, `&&`, `;`
split), and in any other block the lines that start like a command of ours (`cardfeat`, `python …`,
`spark-submit`, `make`). For each:

- `cardfeat <command> …`, `python <file> …`, `spark-submit [options] <file> …` and a bare `scripts/<x>.py …` must
  name a cardfeat command (an unknown command or file fails), and its arguments must parse with that command's
  own parser, in this process (no Spark run);
- `aws emr-serverless start-job-run` lines: the job driver's entry point and arguments, the same way;
- a command of a job that tokenizes card numbers on an `s3://` lake must pass `--card-token-secret-id` (the job
  refuses the public development key there); on a local lake, `--card-token-secret-id` or
  `--allow-development-token-key` (without either the job stops, asking for one);
- `make <target>` must name a Makefile target (`make bench BENCH_ARGS=…`: the arguments parse as `cardfeat bench`);
- any other program must be in OTHER_PROGRAMS below, with the reason it is not checked.

`<placeholder>` values are replaced before parsing: `<lake>` by an s3:// lake (the docs use it for the production
lake), every other one by a plain word.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from cardfeat.cli import BY_NAME, COMMANDS, Command, parse_command

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    {
        REPO_ROOT / "README.md",
        *REPO_ROOT.glob("docs/**/*.md"),
        REPO_ROOT / "state_machines" / "README.md",
        REPO_ROOT / "sample_data" / "README.md",
        *REPO_ROOT.glob("infra/terraform/**/README.md"),
    }
    - set(REPO_ROOT.glob("infra/terraform/**/.terraform/**/README.md"))
)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
COMMAND_STARTS = ("cardfeat ", "python ", "python3 ", ".venv/bin/python ", "spark-submit ", "make ")

# Programs the docs may show that this test does not parse, and why.
OTHER_PROGRAMS = {
    "terraform": "Terraform: validated by tests/infra and `make lint`'s tflint, not here",
    "tofu": "OpenTofu, as terraform",
    "aws": "the AWS CLI (only `aws emr-serverless start-job-run`'s job driver is ours, and is checked)",
    "gh": "the GitHub CLI",
    "git": "git",
    "curl": "HTTP requests to the serving service or downloads",
    "docker": "the EMR image build",
    "gpg": "signature checks of downloaded jars",
    "sha256sum": "checksums",
    "jq": "JSON filtering of other commands' output",
    "source": "shell builtins and file utilities",
    "cd": "shell builtins and file utilities",
    "export": "shell builtins and file utilities",
    "echo": "shell builtins and file utilities",
    "printf": "shell builtins and file utilities",
    "umask": "shell builtins and file utilities",
    "kill": "shell builtins and file utilities",
    "mkdir": "shell builtins and file utilities",
    "cp": "shell builtins and file utilities",
    "rm": "shell builtins and file utilities",
    "cat": "shell builtins and file utilities",
    "head": "shell builtins and file utilities",
    "for": "shell loops (their body's commands are checked on their own lines)",
    "do": "shell loops",
    "done": "shell loops",
}
# Jobs that tokenize card numbers: on an s3:// lake they need the production key's secret.
TOKENIZING_COMMANDS = {"silver-and-gold", "replay-quarantine"}
PYTHONS = {"python", "python3", ".venv/bin/python", "$(PY)"}
SPARK_SUBMIT_FLAGS = {"--verbose", "--supervise"}  # its options without a value
MAKE_ARGUMENT_VARIABLES = {"BENCH_ARGS": "bench"}  # make variables that hold a command's arguments
PRODUCTION_LAKE = "s3://bucket/prefix"
PLACEHOLDER = re.compile(r"<([A-Za-z][^<>\n]*)>")


@dataclass(frozen=True)
class ShownCommand:
    document: Path
    line: int
    text: str  # one command: continuations joined, comment and other commands of the line removed

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO_ROOT)}:{self.line}"


def shown_commands(document: Path) -> list[ShownCommand]:
    """The commands of a document's fenced blocks (see the module docstring)."""
    found: list[ShownCommand] = []
    language: str | None = None  # inside a block: its language ("" for none)
    pending, start = "", 0
    for number, raw in enumerate(document.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            language = stripped[3:].strip().lower() if language is None else None
            pending = ""
            continue
        if language is None:
            continue
        if not pending:
            start = number
        pending += stripped
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if _open_quote(pending):  # a quoted string (say, JSON) goes on over the next lines
            pending += " "
            continue
        line, pending = pending, ""
        if language in SHELL_LANGUAGES or line.startswith(COMMAND_STARTS):
            found.extend(ShownCommand(document, start, text) for text in split_commands(line))
    return found


def _open_quote(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def split_commands(line: str) -> list[str]:
    """The simple commands of a shell line, as text with placeholders filled in (`|`, `&&`, `||`, `;`, `&`)."""
    line = PLACEHOLDER.sub(_placeholder_value, line)
    line = re.sub(r"\$\([^()]*\)", "SUBSTITUTED", line)  # $(…) command substitutions
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.commenters = ""
    lexer.whitespace_split = True
    commands, current = [], []
    try:
        for token in lexer:
            if token.startswith("#"):
                break
            if token in {"|", "||", "&&", ";", "&"}:
                commands.append(current)
                current = []
            else:
                current.append(token)
    except ValueError:  # e.g. an unclosed quote: kept whole, so its test fails saying where
        return [line]
    commands.append(current)
    return [shlex.join(command) for command in commands if command]


def _placeholder_value(match: re.Match) -> str:
    name = match.group(1).strip().lower()
    return PRODUCTION_LAKE if name in {"lake", "lake root", "lake-root"} else "placeholder"


ALL_COMMANDS = [command for document in DOCUMENTS for command in shown_commands(document)]


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_-]*):", text, flags=re.MULTILINE))


def command_for_path(path: str) -> Command:
    """The cardfeat command whose program is the file `path` (as the docs write it)."""
    relative = re.sub(r"^(\./|placeholder/|s3://[^/]+/\S*?code/)", "", path)
    for command in COMMANDS:
        if command.path == relative:
            return command
    pytest.fail(f"{path}: not the program of any cardfeat command ({', '.join(c.path for c in COMMANDS)})")


INPUT_FILE_SUFFIXES = (".ndjson", ".json", ".jsonl", ".csv", ".zip")


def check_parses(command: Command, argv: list[str]) -> None:
    """Parse with the command's own parser, in a scratch folder holding the (empty) input files the command names
    by a relative path, since some parsers check that an input exists; then the production lake's flags."""
    stderr = io.StringIO()
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        for argument in argv:
            if argument.endswith(INPUT_FILE_SUFFIXES) and "://" not in argument and not argument.startswith("/"):
                Path(argument).parent.mkdir(parents=True, exist_ok=True)
                Path(argument).touch()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                parsed = parse_command(command, argv)
        except SystemExit as exit_:
            if exit_.code in (0, None):  # --help
                return
            pytest.fail(f"`{command.name}` refuses {shlex.join(argv)}:\n{stderr.getvalue()}")
    _check_production_flags(command, parsed)


def _check_production_flags(command: Command, parsed) -> None:
    lake_root = str(getattr(parsed, "lake_root", "") or "")
    if command.name in TOKENIZING_COMMANDS and lake_root.startswith("s3://"):
        assert getattr(parsed, "card_token_secret_id", None), (
            f"`{command.name}` on the s3:// lake {lake_root} needs --card-token-secret-id (the production key)"
        )
    elif command.name in TOKENIZING_COMMANDS:
        assert getattr(parsed, "card_token_secret_id", None) or getattr(parsed, "allow_development_token_key", False), (
            f"`{command.name}` on the local lake {lake_root} needs --card-token-secret-id or "
            "--allow-development-token-key (the job refuses to pick the public development key by itself)"
        )


def check_shown_command(tokens: list[str]) -> None:
    while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):  # VAR=value prefixes
        tokens = tokens[1:]
    if not tokens:
        return
    program, arguments = tokens[0], tokens[1:]
    if program == "cardfeat":
        check_cardfeat(arguments)
    elif program in PYTHONS:
        if arguments[:2] == ["-m", "cardfeat.cli"]:
            check_shown_command(["cardfeat", *arguments[2:]])
        else:
            check_parses(command_for_path(arguments[0]), arguments[1:])
    elif program == "spark-submit":
        while arguments and arguments[0].startswith("--"):
            arguments = arguments[1:] if arguments[0] in SPARK_SUBMIT_FLAGS else arguments[2:]
        check_parses(command_for_path(arguments[0]), arguments[1:])
    elif program.endswith(".py"):
        check_parses(command_for_path(program), arguments)
    elif program == "make":
        check_make(arguments)
    elif program == "aws" and arguments[:2] == ["emr-serverless", "start-job-run"]:
        check_job_driver(arguments)
    else:
        assert program in OTHER_PROGRAMS, f"{program!r} is neither a command of ours nor in OTHER_PROGRAMS"


def check_cardfeat(arguments: list[str]) -> None:
    if arguments[:1] in (["--help"], ["-h"]):  # the list of commands
        return
    assert arguments, "cardfeat without a command"
    assert arguments[0] in BY_NAME, f"unknown cardfeat command {arguments[0]!r}: expected one of {list(BY_NAME)}"
    check_parses(BY_NAME[arguments[0]], arguments[1:])


def check_make(arguments: list[str]) -> None:
    targets = makefile_targets()
    for argument in arguments:
        variable, equals, value = argument.partition("=")
        if equals:
            if variable in MAKE_ARGUMENT_VARIABLES:
                check_parses(BY_NAME[MAKE_ARGUMENT_VARIABLES[variable]], shlex.split(value))
        else:
            assert argument in targets, f"make {argument}: no such target in the Makefile ({sorted(targets)})"


def check_job_driver(arguments: list[str]) -> None:
    """`aws emr-serverless start-job-run … --job-driver '{"sparkSubmit": …}'`: the entry point's arguments."""
    driver = json.loads(arguments[arguments.index("--job-driver") + 1])["sparkSubmit"]
    check_parses(command_for_path(driver["entryPoint"]), driver.get("entryPointArguments", []))


@pytest.mark.parametrize("shown", ALL_COMMANDS, ids=lambda shown: f"{shown.where} {shown.text[:60]}")
def test_every_command_in_the_docs_parses_with_its_own_parser(shown: ShownCommand):
    try:
        check_shown_command(shlex.split(shown.text))
    except AssertionError as error:
        raise AssertionError(f"{shown.where}: {shown.text}\n{error}") from None


def test_the_docs_show_commands():
    """The extraction finds what it should (a broken extractor would check nothing)."""
    shown = {command.text for command in ALL_COMMANDS}
    assert any(text.startswith("make demo") for text in shown)
    assert any(text.startswith("cardfeat ") for text in shown)
    assert len(ALL_COMMANDS) > 40


@pytest.mark.parametrize(
    "text, problem",
    [
        ("cardfeat silver-and-gold --mode nightly", "refuses"),
        ("cardfeat no-such-command", "unknown cardfeat command"),
        ("python scripts/no_such_script.py --x", "not the program of any cardfeat command"),
        (
            "spark-submit --master 'local[*]' spark_jobs/silver_and_gold.py --lake-root s3://b/p "
            "--event-id-index-table t --lease-table l",
            "needs --card-token",
        ),
        (
            "spark-submit --master 'local[*]' spark_jobs/silver_and_gold.py --lake-root s3://b/p "
            "--card-token-secret-id s --lease-table l",
            "pass --event-id-index-table",
        ),
        (
            "spark-submit --master 'local[*]' spark_jobs/silver_and_gold.py --lake-root s3://b/p "
            "--card-token-secret-id s --event-id-index-table t",
            "must hold the pipeline lease",
        ),
        ("cardfeat silver-and-gold --mode stream --lake-root ./lake", "needs --card-token-secret-id or --allow-dev"),
        ("cardfeat replay-quarantine --lake-root ./lake", "needs --card-token-secret-id or --allow-dev"),
        ("make no-such-target", "no such target"),
        ("rsync -a lake/ elsewhere/", "neither a command of ours"),
    ],
)
def test_a_broken_command_fails(text, problem):
    with pytest.raises((AssertionError, pytest.fail.Exception), match=problem):
        check_shown_command(shlex.split(split_commands(text)[0]))


def test_a_continued_line_with_a_comment_and_a_pipe_is_split_into_its_commands(tmp_path):
    document = tmp_path / "doc.md"
    document.write_text(
        "```bash\ncardfeat generate --events 10 \\\n  --lake-root <lake>   # a comment\n"
        "cardfeat generate | cardfeat serve replay --lake-root ./lake && make demo\n```\n"
    )
    texts = [command.text for command in shown_commands(document)]
    assert texts == [
        f"cardfeat generate --events 10 --lake-root {PRODUCTION_LAKE}",
        "cardfeat generate",
        "cardfeat serve replay --lake-root ./lake",
        "make demo",
    ]
