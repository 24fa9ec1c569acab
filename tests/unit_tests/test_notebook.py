"""``docs/example.ipynb`` runs, offline, in a real Jupyter kernel (nbclient + ipykernel's
``python3`` kernel spec, which ``pip install`` puts in the venv).

The notebook replays ``cassettes/example_notebook.yaml`` (a plain vcrpy cassette, so the
notebook needs nothing from the test suite; its images are shrunk to 1x1 after recording).
It runs on a copy in a temporary directory, so the images it saves land there. Re-record
it against the emulator with ``pytest tests/unit_tests/test_notebook.py
--record-mode=rewrite``.

The kernel talks to this process over ZeroMQ IPC sockets (``transport="ipc"``), so the
test keeps pytest-socket's ban on TCP sockets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from vcr.serializers import compat

from tests.conftest import EMULATOR_KEY, _shrink_images
from tests.readable_yaml import ReadableYamlSerializer

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "example.ipynb"
CASSETTE = ROOT / "cassettes" / "example_notebook.yaml"
REPLAY_ONLY = 'record_mode="none",'


def _outputs(cell: Any, kind: str) -> list[str]:
    return [
        output["data"][kind] for output in cell.get("outputs", []) if kind in output.get("data", {})
    ]


def _printed(cell: Any) -> str:
    """What the cell printed: the kernel flushes stdout on a timer, so one print may arrive
    in several stream outputs, or several prints in one."""
    return "".join(
        output["text"]
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


def _shrink(recorded: Path, target: Path) -> None:
    """Store 1x1 stand-ins for the images, as every cassette does (tests/conftest.py), in
    the readable format of the other cassettes (tests/readable_yaml.py)."""
    cassette = yaml.safe_load(recorded.read_text(encoding="utf-8"))
    for interaction in cassette["interactions"]:
        _shrink_images(interaction["response"])
        for part in ("request", "response"):
            interaction[part] = compat.convert_to_unicode(interaction[part])
    target.write_text(ReadableYamlSerializer.serialize(cassette), encoding="utf-8")


def _execute(workdir: Path, record_mode: str | None) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if record_mode is not None:
        setup = nb.cells[1]
        assert REPLAY_ONLY in setup.source
        setup.source = setup.source.replace(REPLAY_ONLY, f'record_mode="{record_mode}",')
    with tempfile.TemporaryDirectory(prefix="nb") as sockets:
        # An absolute IPC path: the kernel starts in docs/, not in this process's directory
        # (and AF_UNIX paths must stay short).
        manager = KernelManager(
            kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel")
        )
        client = NotebookClient(
            nb,
            km=manager,
            timeout=120,
            startup_timeout=120,
            resources={"metadata": {"path": str(workdir / "docs")}},
        )
        client.execute()
    return nb


def test_example_notebook_runs_offline(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_mode = request.config.getoption("--record-mode")
    recording = record_mode in ("rewrite", "all") or (
        record_mode in ("once", "new_episodes") and not CASSETTE.exists()
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "cassettes").mkdir()
    copy = tmp_path / "cassettes" / CASSETTE.name
    if not recording:
        assert CASSETTE.exists(), f"record it: pytest {__file__} --record-mode=once"
        shutil.copy(CASSETTE, copy)
    monkeypatch.setenv("OPENAI_API_KEY", EMULATOR_KEY)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no user profile
    if recording:
        import pytest_socket

        from tests.emulator import Emulator

        pytest_socket.enable_socket()  # the emulator listens on 127.0.0.1
        with Emulator(api_key=EMULATOR_KEY) as emulator:
            monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url)
            # Each `with replay:` block appends its requests to the fresh cassette.
            nb = _execute(tmp_path, "new_episodes")
        _shrink(copy, CASSETTE)
    else:
        assert "OPENAI_BASE_URL" not in os.environ
        nb = _execute(tmp_path, None)

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    generate, inspect, agent, seeing, previews = code[1:]

    assert _printed(generate) == "requested 2\nreceived 2\nsaved \nsaved \n"
    (page,) = _outputs(generate, "text/html")
    assert page.count('<img src="data:image/png;base64,') == 2
    assert str(tmp_path) not in page  # captions name files, not where the kernel ran
    assert "size: &#x27;1920x1080&#x27; → &#x27;1920x1088&#x27;" in page

    printed = _printed(inspect)
    lines = printed.splitlines()
    assert lines[0].startswith("1920x1088 image/png ")
    assert lines[2] == (
        "{'model': 'gpt-image-2', 'prompt': 'a lighthouse at dawn, watercolor', "
        "'size': '1920x1088', 'n': 2}"
    )
    assert "nearest size gpt-image-2 supports" in lines[3]

    printed = _printed(agent)
    assert printed.startswith("Generated 1 image with gpt-image-2.")
    assert "quality: 'best' → 'high'" in printed
    (page,) = _outputs(agent, "text/html")
    assert page.count("<img ") == 1
    assert str(tmp_path) not in page

    (blocks,) = _outputs(seeing, "text/plain")
    assert blocks == "[('text', None), ('image', 'image/png')]"

    # Streamed: one display, made at the first preview and updated in place (nbclient
    # applies the updates to the output), showing the saved image at the end.
    (shown,) = [output for output in previews.outputs if output["output_type"] == "display_data"]
    printed = _printed(previews)
    final = Path(printed.splitlines()[1].split(" ", 1)[1]).name
    assert shown["data"]["text/plain"] == f"image 1: {final}"
    assert shown["data"]["text/html"].count('<img src="data:image/png;base64,') == 1

    saved = [path.name for path in (tmp_path / "docs" / "generated_images").iterdir()]
    previewed = [name for name in saved if name.startswith("preview-")]
    assert len(previewed) == 2
    assert len(saved) == 4 + 1 + 2  # the cells above, the streamed image, its previews
