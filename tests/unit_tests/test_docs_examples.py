"""Every code block in ``README.md`` and ``docs/*.md`` runs, offline, and shows what it says.

Conventions (HTML comments on the lines just above a fence; see ``docs/testing.md``):

* ```` ```python ```` blocks run in order, in one namespace per file, in a temporary working
  directory, with no network: a block that sends a request without a cassette fails.
  Blocks written as ``>>>`` sessions run as doctests.
* ``<!-- cassette: NAME -->``: the block's requests replay ``cassettes/docs_NAME.yaml``
  (record them against the emulator with ``--record-mode=once`` or ``rewrite``).
* ``<!-- output -->`` on a ```` ```text ```` block: the stdout of the block before it, compared
  as doctest output (``...`` matches anything, whitespace is normalised).
* ```` ```bash ```` blocks run line by line: ``export NAME=value`` sets the variable, and
  ``langchain-imagegen ...`` runs through ``cli.main`` (exit code 0 expected, or the one in
  ``<!-- exit: N -->``; its output is stdout and stderr together). Anything else needs
  ``<!-- not-run: reason -->``.
  ``<!-- test-command -->`` (the test suite itself) is not run; in ``<!-- main-command -->``
  the venv and pip steps are setup, and the CLI step runs.
* Other fence languages may not hide code: only python, bash and inert ones are allowed.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import vcr

from langchain_imagegen import registry
from langchain_imagegen.cli import main
from tests import readable_yaml
from tests.conftest import CASSETTE_DIR, EMULATOR_KEY

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCTESTED_ELSEWHERE = {"coercion.md": "tests/unit_tests/test_docs_coercion.py"}
"""Files whose ``>>>`` examples another test runs (with its own fixtures)."""
INERT = {"", "text", "json", "toml", "yaml", "markdown", "diff", "html"}
"""Fence languages that hold no code to run (unlabelled fences included)."""
AZURE_ENDPOINT = "https://my-resource.openai.azure.com"
EMULATOR_DEPLOYMENTS = {"images-prod": "gpt-image-1"}
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
_MARKER = re.compile(r"^\s*<!--\s*(?P<name>[\w-]+)\s*(?::\s*(?P<value>.*?))?\s*-->\s*$")
_CLI = re.compile(r"^(?:\.venv/bin/)?(?:langchain-imagegen|python3? -m langchain_imagegen)\s")
_SETUP = re.compile(r"^(?:python3? -m venv \S+|(?:\.venv/bin/)?pip install .*)$")
_EXPORT = re.compile(r"^export (?P<name>[A-Z_][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    source: str
    markers: dict[str, str]
    output: str | None = None
    where: str = field(init=False)

    def __post_init__(self) -> None:
        self.where = f"{self.path.relative_to(ROOT)}:{self.line}"


def _markers(text: str, fence_start: int) -> dict[str, str]:
    """HTML comment lines right above a fence (blank lines between them are allowed)."""
    found: dict[str, str] = {}
    for line in reversed(text[:fence_start].splitlines()):
        if not line.strip():
            continue
        match = _MARKER.match(line)
        if match is None:
            break
        found.setdefault(match["name"], match["value"] or "")
    return found


def parse(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for match in _FENCE.finditer(text):
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in match["body"].splitlines()) + "\n"
        block = Block(
            path=path,
            line=text[: match.start()].count("\n") + 1,
            lang=match["lang"].lower(),
            source=body,
            markers=_markers(text, match.start()),
        )
        if "output" in block.markers:
            assert block.lang == "text", f"{block.where}: <!-- output --> goes on a text block"
            assert blocks, f"{block.where}: an output block needs a block before it"
            assert blocks[-1].lang in ("python", "bash"), f"{block.where}: output of what?"
            blocks[-1].output = block.source
        blocks.append(block)
    return blocks


def _check_output(block: Block, got: str) -> None:
    if block.output is None:
        return
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    if not checker.check_output(block.output, got, flags):
        example = doctest.Example("", block.output)
        diff = checker.output_difference(example, got, flags)
        pytest.fail(f"{block.where}: the output shown is not what the code prints\n{diff}")


# --- cassettes ------------------------------------------------------------------------------


class _Cassettes:
    """``vcr.use_cassette`` with the suite's configuration (tests/conftest.py)."""

    def __init__(self, config: dict[str, Any], record_mode: str) -> None:
        settings = dict(config)
        self.repeats = settings.pop("allow_playback_repeats", True)
        self.vcr = vcr.VCR(**settings, cassette_library_dir=str(CASSETTE_DIR))
        self.vcr.register_serializer(readable_yaml.NAME, readable_yaml.ReadableYamlSerializer)
        self.record_mode = record_mode

    def use(self, name: str | None) -> contextlib.AbstractContextManager[Any]:
        if name is None:
            return _no_network()
        return self.vcr.use_cassette(
            f"docs_{name}", record_mode=self.record_mode, allow_playback_repeats=self.repeats
        )


class _NetworkUsedError(AssertionError):
    """A block without a cassette tried to send a request (an AssertionError: no layer of
    the package catches it, so it fails the test instead of becoming an error message)."""


@contextlib.contextmanager
def _no_network() -> Iterator[None]:
    """Real transports refuse; an ``httpx.MockTransport`` a block sets up still works."""

    def refuse(self: Any, request: httpx.Request) -> httpx.Response:
        raise _NetworkUsedError(f"{request.method} {request.url}: add a <!-- cassette: NAME -->")

    async def arefuse(self: Any, request: httpx.Request) -> httpx.Response:
        raise _NetworkUsedError(f"{request.method} {request.url}: add a <!-- cassette: NAME -->")

    with (
        mock.patch.object(httpx.HTTPTransport, "handle_request", refuse),
        mock.patch.object(httpx.AsyncHTTPTransport, "handle_async_request", arefuse),
    ):
        yield


@contextlib.contextmanager
def _recording_target(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    import pytest_socket

    from tests.emulator import Emulator

    pytest_socket.enable_socket()  # the emulator listens on 127.0.0.1
    with Emulator(api_key=EMULATOR_KEY, deployments=EMULATOR_DEPLOYMENTS) as emulator:
        yield {
            "OPENAI_BASE_URL": emulator.base_url,
            "OPENAI_API_KEY": EMULATOR_KEY,
            "AZURE_OPENAI_ENDPOINT": emulator.url,
            "AZURE_OPENAI_API_KEY": EMULATOR_KEY,
        }


# --- running --------------------------------------------------------------------------------


class _Runner:
    def __init__(
        self, cassettes: _Cassettes, monkeypatch: pytest.MonkeyPatch, pinned: dict[str, str]
    ) -> None:
        self.cassettes = cassettes
        self.monkeypatch = monkeypatch
        self.pinned = pinned  # while recording: where the emulator is, whatever docs export
        self.check = _check_output if not pinned else (lambda block, got: None)
        # (outputs show replays: recording talks to the emulator, whose URLs differ)
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.ran: list[str] = []

    def setenv(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, self.pinned.get(name, value))

    def python(self, block: Block) -> None:
        out = io.StringIO()
        with self.cassettes.use(block.markers.get("cassette")), contextlib.redirect_stdout(out):
            if ">>>" in block.source:
                self._doctest(block)
            else:
                exec(compile(block.source, block.where, "exec"), self.namespace)
        self.check(block, out.getvalue())
        self.ran.append(block.where)

    def _doctest(self, block: Block) -> None:
        parser = doctest.DocTestParser()
        test = parser.get_doctest(
            block.source, self.namespace, block.where, str(block.path), block.line
        )
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report: list[str] = []
        runner.run(test, out=report.append, clear_globs=False)
        assert runner.failures == 0, "".join(report)

    def bash(self, block: Block) -> None:
        if "not-run" in block.markers:
            assert block.markers["not-run"], f"{block.where}: say why it is not run"
            return
        if "test-command" in block.markers:
            return  # the suite itself (CI reads it from the README)
        setup_allowed = "main-command" in block.markers
        expected = int(block.markers.get("exit", "0"))
        out = io.StringIO()
        commands = 0
        for segment in _segments(block.source):
            if setup_allowed and _SETUP.match(segment):
                continue  # installing: done by the test environment
            if export := _EXPORT.match(segment):
                self.setenv(export["name"], _unquote(export["value"]))
                continue
            assert _CLI.match(segment), (
                f"{block.where}: cannot run {segment!r}; mark the block "
                "<!-- not-run: reason --> or make it a langchain-imagegen command"
            )
            argv = shlex.split(segment)
            argv = argv[3:] if argv[0].endswith(("python", "python3")) else argv[1:]
            if setup_allowed:
                console_script = Path(sys.executable).parent / "langchain-imagegen"
                assert console_script.exists(), "the console script is installed"
            with self.cassettes.use(block.markers.get("cassette")), contextlib.redirect_stderr(out):
                code = main(argv, out=out)  # stdout and stderr, as a terminal shows them
            assert code == expected, f"{block.where}: {segment!r} exited {code}"
            commands += 1
        self.check(block, out.getvalue())
        if commands:
            self.ran.append(block.where)


def _segments(source: str) -> Iterator[str]:
    joined = re.sub(r"\\\n\s*", " ", source)
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for segment in stripped.split("&&"):
            yield segment.strip()


def _unquote(value: str) -> str:
    parts = shlex.split(value)
    return parts[0] if parts else ""


def _run_file(
    path: Path,
    vcr_config: dict[str, Any],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> list[str]:
    blocks = parse(path)
    record_mode = request.config.getoption("--record-mode") or "none"
    recording = record_mode != "none" and any("cassette" in b.markers for b in blocks)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "default_registry", registry.ModelRegistry())
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", AZURE_ENDPOINT)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", EMULATOR_KEY)
    cassettes = _Cassettes(vcr_config, record_mode)
    with contextlib.ExitStack() as stack:
        pinned = stack.enter_context(_recording_target(monkeypatch)) if recording else {}
        for name, value in pinned.items():
            monkeypatch.setenv(name, value)
        runner = _Runner(cassettes, monkeypatch, pinned)
        for block in blocks:
            if block.lang == "python":
                if ">>>" in block.source and path.name in DOCTESTED_ELSEWHERE:
                    continue  # run by DOCTESTED_ELSEWHERE[path.name]
                runner.python(block)
            elif block.lang == "bash":
                runner.bash(block)
            else:
                assert block.lang in INERT, (
                    f"{block.where}: a ```{block.lang or '(no language)'} block is not run; "
                    "write python or bash (or an inert language such as text)"
                )
    return runner.ran


@pytest.mark.filterwarnings("error::FutureWarning")  # e.g. a docs example on a retired model
@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples_run(
    path: Path,
    vcr_config: dict[str, Any],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _run_file(path, vcr_config, request, monkeypatch, tmp_path)


def test_the_main_pages_are_there() -> None:
    names = {p.name for p in DOCS}
    for name in (
        "README.md",
        "index.md",
        "quickstart.md",
        "providers.md",
        "agents.md",
        "testing.md",
        "cli.md",
        "integration.md",
    ):
        assert name in names


def test_cassette_names_are_unique_and_used() -> None:
    names = [b.markers["cassette"] for p in DOCS for b in parse(p) if "cassette" in b.markers]
    shared = {n for n in names if names.count(n) > 1}
    assert not shared, f"one cassette per block: {shared}"
    recorded = {
        p.name.removeprefix("docs_").removesuffix(readable_yaml.SUFFIX)
        for p in CASSETTE_DIR.glob(f"docs_*{readable_yaml.SUFFIX}")
    }
    assert recorded == set(names), "stale or missing docs cassettes"


def test_docs_doctested_elsewhere_exist() -> None:
    for name, test in DOCTESTED_ELSEWHERE.items():
        if (ROOT / "docs" / name).exists():
            assert (ROOT / test).exists(), f"docs/{name}'s >>> examples need {test}"


def test_readme_keeps_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = parse(ROOT / "README.md")
    assert "main-command" in blocks[0].markers
    assert "test-command" in blocks[1].markers
    assert text.index("<!-- main-command -->") < text.index("<!-- test-command -->")


def test_blocks_without_a_cassette_cannot_reach_the_network() -> None:
    with _no_network(), pytest.raises(_NetworkUsedError, match="add a <!-- cassette"):
        httpx.get("http://images.test/v1/images/generations")


def test_parser_reads_markers_and_outputs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n<!-- cassette: demo -->\n\n```python\nprint(1)\n```\n\n"
        "<!-- output -->\n```text\n1\n```\n\n  ```bash\n  langchain-imagegen models\n  ```\n",
        encoding="utf-8",
    )
    monkeypatch_root = mock.patch(f"{__name__}.ROOT", tmp_path)
    with monkeypatch_root:
        python, output, bash = parse(page)
    assert python.markers == {"cassette": "demo"}
    assert python.output == "1\n"
    assert output.lang == "text"
    assert bash.lang == "bash"
    assert bash.source == "langchain-imagegen models\n"
