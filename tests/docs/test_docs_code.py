"""The docs cannot drift from the code: every page's code and links are checked here.

What is checked, in every page of ``docs/`` and in ``README.md``:

- ```` ```python ```` blocks: each block is one module. It must compile and pass mypy with the
  project's settings (``[tool.mypy]``: strict), except that a snippet's functions may leave their
  parameters unannotated (a handler ``async def audit(event) -> None`` reads better in a guide):
  each module starts with ``# mypy: allow-untyped-defs, allow-incomplete-defs``. mypy runs once
  over all blocks. Then every block runs, each in an empty temporary directory, all in one
  subprocess. Conventions:

  - ``<!-- docs: no-run -->`` on the line before a block: checked, not run, for a block that
    needs a service (a CRM, a network endpoint) or starts one. Keep these few: ``NO_RUN_BUDGET``
    caps them.
  - A block with top-level ``await`` (or ``async with``) is checked and run as the body of an
    ``async def``, as ``python -m asyncio`` would run it.
  - Names that stand for the reader's own code and data (``crm``, ``router``, ``event``,
    ``url``, ``save_transcript``) come from ``tests/docs/snippet_context.py`` when a block uses
    one without defining it.
  - ``examples/`` is on the path, so a block showing an example's test imports ``handlers`` or
    ``send_chat`` as the example does.
  - The variables of ``RUN_ENV`` (``HUBSPOT_TOKEN``…) are set to dummies while blocks run.

- ```` ```console ```` blocks, and inline code such as ``omnihook events list``: each
  ``omnihook`` command names a (sub)command that exists and whose ``--help`` works, and every
  option it gives is one of that command's; ``python -m bench --only PART`` names a part the
  bench has.
- ```` ```toml ```` blocks parse; those made only of bridge-file tables (``receiver``, ``crm``,
  ``rocketchat``, ``alerts``) are valid bridge files.
- The nav: every page of ``docs/`` is in ``mkdocs.yml``'s nav, and the nav names only pages that
  exist. Every relative link of the docs and of the README resolves, anchors included.
- The Rocket.Chat page's table of switches says what ``ADMIN_SWITCHES`` says.

The site itself is built by ``.ci/run`` (``uv run mkdocs build --strict``), not here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from markdown.extensions.toc import slugify

from omnihook.contracts import ADMIN_SWITCHES
from omnihook.contracts.cli import root as omnihook_cli
from omnihook.receiver.bridge import BridgeConfigError, parse_bridge_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONTEXT = Path(__file__).with_name("snippet_context.py")
NO_RUN_MARK = "<!-- docs: no-run -->"
NO_RUN_BUDGET = 5
CONTEXT_NAMES = frozenset({"crm", "event", "router", "save_transcript", "url"})
MYPY_HEADER = "# mypy: allow-untyped-defs, allow-incomplete-defs"
RUN_ENV = {"HUBSPOT_TOKEN": "pat-docs", "OMNIHOOK_TOKEN": "s3cret"}
BRIDGE_TABLES = frozenset({"receiver", "crm", "rocketchat", "alerts"})


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- reading pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # the 1-based line of the block's first line of code
    lang: str
    code: str
    no_run: bool

    @property
    def where(self) -> str:
        return f"{shown(self.path)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)\s*$")


def blocks_of(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        before = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        yield Block(path, i + 2, opening["lang"], "\n".join(body) + "\n", before == NO_RUN_MARK)
        i = end + 1


def blocks(lang: str) -> list[Block]:
    return [block for path in markdown_files() for block in blocks_of(path) if block.lang == lang]


def prose_of(path: Path) -> str:
    """The page without its fenced blocks (each line of them left blank)."""
    out: list[str] = []
    inside: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        opening = _FENCE.match(line)
        if inside is None and opening is not None:
            inside = opening["fence"]
        elif inside is not None and line.strip() == inside:
            inside = None
        else:
            out.append("" if inside is not None else line)
            continue
        out.append("")
    return "\n".join(out)


# -- python blocks ---------------------------------------------------------------------------

PYTHON_BLOCKS = blocks("python")


def is_async(code: str) -> bool:
    try:
        compile(code, "<block>", "exec")
    except SyntaxError:
        compile(code, "<block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return True
    return False


def context_names_used(tree: ast.AST) -> list[str]:
    """The context names a block reads without binding them anywhere."""
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return sorted((used - bound) & CONTEXT_NAMES)


def module_source(block: Block) -> tuple[str, int]:
    """The module checked and run for a block, and how many of its lines precede the block's."""
    wrap = is_async(block.code)
    flags = ast.PyCF_ONLY_AST | (ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if wrap else 0)
    tree = compile(block.code, block.where, "exec", flags=flags)
    # `from __future__` imports must come first: they move up, leaving a blank line behind.
    lines = block.code.splitlines()
    future = [line for line in lines if line.startswith("from __future__ import")]
    code = "\n".join("" if line in future else line for line in lines) + "\n"
    header = [MYPY_HEADER, *future]
    names = context_names_used(tree)
    if names:
        header.append(f"from snippet_context import {', '.join(names)}")
    if not wrap:
        return "\n".join([*header, code]), len(header)
    header += ["import asyncio", "", "", "async def _snippet() -> None:"]
    body = textwrap.indent(code, "    ")
    return "\n".join([*header, body, "", "asyncio.run(_snippet())", ""]), len(header)


@pytest.fixture(scope="module")
def snippets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[Block, int]]]:
    """Each block written as a module ``snippet_NNN``, beside the context module."""
    directory = tmp_path_factory.mktemp("snippets")
    (directory / "snippet_context.py").write_text(CONTEXT.read_text())
    modules = {}
    for index, block in enumerate(PYTHON_BLOCKS):
        source, offset = module_source(block)
        name = f"snippet_{index:03d}"
        (directory / f"{name}.py").write_text(source)
        modules[name] = (block, offset)
    return directory, modules


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.where)
def test_python_block_compiles(block: Block) -> None:
    source, _ = module_source(block)
    compile(source, block.where, "exec")


def test_python_blocks_pass_mypy(
    snippets: tuple[Path, dict[str, tuple[Block, int]]], request: pytest.FixtureRequest
) -> None:
    directory, modules = snippets
    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("docs-mypy") if cache is not None else directory / ".mypy_cache"
    mypy = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    mypy += ["--cache-dir", str(cache_dir), "--follow-imports=silent", "--no-error-summary"]
    mypy += ["--hide-error-context", "--show-error-codes"]
    result = subprocess.run(
        [*mypy, *(str(directory / f"{name}.py") for name in sorted(modules))],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": os.pathsep.join([str(directory), str(ROOT / "examples")])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = []
    for line in result.stdout.splitlines():
        found = re.match(r"^(?:.*/)?(snippet_\d{3})\.py:(\d+): (.*)$", line)
        if found is None:
            problems.append(line)
            continue
        block, offset = modules[found[1]]
        problems.append(
            f"{shown(block.path)}:{block.line + int(found[2]) - 1 - offset}: {found[3]}"
        )
    assert not problems, "\n".join(problems)
    assert result.returncode == 0, result.stderr


_RUNNER = """
import contextlib, io, json, os, runpy, sys, tempfile, traceback
results = {}
for name in sys.argv[2:]:
    print("running", name, file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as cwd:
        os.chdir(cwd)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                runpy.run_path(os.path.join(sys.argv[1], name + ".py"), run_name="docs_" + name)
        except BaseException:
            results[name] = out.getvalue() + traceback.format_exc()
        else:
            results[name] = None
        os.chdir(sys.argv[1])
print(json.dumps(results))
"""


def test_python_blocks_run(snippets: tuple[Path, dict[str, tuple[Block, int]]]) -> None:
    directory, modules = snippets
    skipped = [block.where for block, _ in modules.values() if block.no_run]
    assert len(skipped) <= NO_RUN_BUDGET, f"too many blocks marked {NO_RUN_MARK}: {skipped}"
    runnable = sorted(name for name, (block, _) in modules.items() if not block.no_run)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(directory), *runnable],
            cwd=directory,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("OMNIHOOK_")},
                **RUN_ENV,
                "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT / "examples")]),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as timeout:
        stderr = timeout.stderr.decode() if isinstance(timeout.stderr, bytes) else timeout.stderr
        last = (stderr or "").split()[-1:]
        hung = [modules[name][0].where for name in last if name in modules]
        pytest.fail(f"a block ran for more than 60 s: {hung} (mark it {NO_RUN_MARK}?)")
    assert result.returncode == 0, result.stderr
    failures = json.loads(result.stdout.splitlines()[-1])
    failed = [
        f"{modules[name][0].where}:\n{textwrap.indent(text, '    ')}"
        for name, text in sorted(failures.items())
        if text is not None
    ]
    assert not failed, "\n".join(failed)


# -- omnihook commands -----------------------------------------------------------------------


def console_commands(block: Block) -> Iterator[str]:
    """The commands of a console block: lines after a ``$`` prompt if any, else every line."""
    lines = block.code.splitlines()
    prompted = any(line.startswith("$ ") for line in lines)
    command = ""
    for line in lines:
        if prompted and not command:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        command += line
        if command.endswith("\\"):
            command = command[:-1]
            continue
        yield command
        command = ""


def omnihook_invocations(command: str) -> Iterator[list[str]]:
    """The arguments after each ``omnihook`` word of a shell line (comments dropped)."""
    words = shlex.split(command, comments=True)
    for i, word in enumerate(words):
        if word == "omnihook" and (i == 0 or words[i - 1] == "run" or "=" in words[i - 1]):
            rest = []
            for following in words[i + 1 :]:
                if following in ("&&", ";", "||"):
                    break
                rest.append(following)
            yield rest


@dataclass(frozen=True)
class Mention:
    where: str
    args: tuple[str, ...]


def mentions() -> list[Mention]:
    found = []
    for block in blocks("console"):
        for command in console_commands(block):
            for args in omnihook_invocations(command):
                found.append(Mention(block.where, tuple(args)))
    for path in markdown_files():
        prose = prose_of(path)
        for span in re.finditer(r"(?<!`)`([^`]+)`(?!`)", prose):
            text = " ".join(span[1].split())
            if re.match(r"^(?:(?:\w+=\S+ )*uv run )?omnihook \w", text):
                line = prose.count("\n", 0, span.start()) + 1
                for args in omnihook_invocations(text):
                    found.append(Mention(f"{shown(path)}:{line}", tuple(args)))
    return found


def resolve(args: tuple[str, ...]) -> tuple[list[str], click.Command]:
    """The (sub)command path the arguments name, and that command; fails if a name is wrong."""
    command: click.Command = omnihook_cli
    path: list[str] = []
    for arg in args:
        if not isinstance(command, click.Group) or arg.startswith("-"):
            break
        with click.Context(command) as ctx:
            sub = command.get_command(ctx, arg)
        if sub is None:
            known = ", ".join(command.list_commands(click.Context(command)))
            raise AssertionError(f"omnihook {' '.join([*path, arg])}: no such command ({known})")
        command, path = sub, [*path, arg]
    return path, command


def options_of(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts, param.secondary_opts)
    return names


MENTIONS = mentions()


def test_docs_name_omnihook_commands() -> None:
    assert len(MENTIONS) > 50, "the docs should show many omnihook commands"


@pytest.mark.parametrize(
    "args", sorted({m.args for m in MENTIONS}), ids=lambda args: " ".join(args)[:60]
)
def test_omnihook_command_exists_with_its_options(args: tuple[str, ...]) -> None:
    where = ", ".join(sorted({m.where for m in MENTIONS if m.args == args}))
    try:
        path, command = resolve(args)
    except AssertionError as error:
        raise AssertionError(f"{where}: {error}") from None
    assert path, f"{where}: `omnihook {' '.join(args)}` names no subcommand"
    for arg in args[len(path) :]:
        option = arg.strip("[]").split("=")[0]
        if option.startswith("-") and option != "-" and not option[1:].isdigit():
            assert option in options_of(command), (
                f"{where}: `omnihook {' '.join(path)}` has no option {option}; "
                f"it has {sorted(options_of(command))}"
            )


def command_paths() -> set[tuple[str, ...]]:
    """Every (sub)command the docs name (a wrong name fails the test above, not collection)."""
    paths = set()
    for mention in MENTIONS:
        try:
            paths.add(tuple(resolve(mention.args)[0]))
        except AssertionError:
            continue
    return paths


@pytest.mark.parametrize("path", sorted(command_paths()), ids=" ".join)
def test_omnihook_command_help_works(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(omnihook_cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def bench_parts() -> set[str]:
    tree = ast.parse((ROOT / "bench" / "__main__.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "--only"
        ):
            for keyword in node.keywords:
                if keyword.arg == "choices":
                    return set(ast.literal_eval(keyword.value))
    raise AssertionError("bench/__main__.py has no --only choices")


def test_bench_parts_named_in_the_docs_exist() -> None:
    parts = bench_parts()
    named: list[tuple[str, str]] = []
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        named += [(shown(path), part) for part in re.findall(r"python -m bench --only (\w+)", text)]
        for listed in re.findall(r"# parts: ([\w, ]+)", text):
            assert set(listed.replace(" ", "").split(",")) == parts, f"{shown(path)}: {listed}"
    assert named
    assert all(part in parts for _, part in named), [n for n in named if n[1] not in parts]


# -- toml blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize("block", blocks("toml"), ids=lambda block: block.where)
def test_toml_block_is_a_valid_bridge_file(block: Block) -> None:
    data = tomllib.loads(block.code)
    if set(data) <= BRIDGE_TABLES:
        problem = None
        try:
            parse_bridge_config(data, source=block.where)
        except BridgeConfigError as error:
            problem = str(error)
        assert problem is None, problem


# -- nav and links ---------------------------------------------------------------------------


class _AnyTagLoader(yaml.SafeLoader):
    """mkdocs.yml may hold ``!!python/name:`` tags: read them as plain values."""


_AnyTagLoader.add_multi_constructor("", lambda loader, suffix, node: None)


def nav_pages(entries: Any) -> Iterator[str]:
    if isinstance(entries, str):
        if not re.match(r"^\w+://", entries):
            yield entries
    elif isinstance(entries, list):
        for entry in entries:
            yield from nav_pages(entry)
    elif isinstance(entries, dict):
        for value in entries.values():
            yield from nav_pages(value)


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_AnyTagLoader)
    in_nav = list(nav_pages(config["nav"]))
    on_disk = sorted(str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md"))
    assert sorted(set(in_nav)) == sorted(in_nav), "a page is twice in the nav"
    assert sorted(set(in_nav) - set(on_disk)) == [], "the nav names pages that do not exist"
    assert sorted(set(on_disk) - set(in_nav)) == [], "pages missing from the nav"


def anchors_of(path: Path) -> set[str]:
    found = set()
    for line in prose_of(path).splitlines():
        heading = re.match(r"^#{1,6} (.*?)(?:\s*\{#([\w-]+)\})?\s*$", line)
        if heading:
            found.add(heading[2] or slugify(re.sub(r"`", "", heading[1]), "-"))
    return found


_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links_of(path: Path) -> Iterator[tuple[int, str]]:
    prose = re.sub(r"`[^`\n]*`", lambda m: " " * len(m[0]), prose_of(path))
    for number, line in enumerate(prose.splitlines(), 1):
        for link in _LINK.finditer(line):
            yield number, link[1]


def test_every_relative_link_resolves() -> None:
    broken = []
    count = 0
    for path in markdown_files():
        for number, target in links_of(path):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            count += 1
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{shown(path)}:{number}: {target}: no such file")
            elif path.is_relative_to(DOCS) and not linked.is_relative_to(DOCS):
                broken.append(f"{shown(path)}:{number}: {target}: outside docs/ (not in the site)")
            elif anchor and (linked.suffix != ".md" or anchor not in anchors_of(linked)):
                broken.append(f"{shown(path)}:{number}: {target}: no heading #{anchor}")
    assert count > 50
    assert not broken, "\n".join(broken)


# -- facts pages -----------------------------------------------------------------------------


def test_the_rocketchat_page_lists_the_switches_as_the_contracts_do() -> None:
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in (DOCS / "rocketchat.md").read_text().splitlines()
        if line.startswith("| ") and "`Livechat_webhook_on_" in line
    ]
    documented = {(row[0].removesuffix(" (admin setting only)"), row[1], row[2]) for row in rows}
    expected = {
        (switch.label, f"`{switch.setting}`", f"`{switch.event_type.value}`")
        for switch in ADMIN_SWITCHES
    }
    assert documented == expected
