"""``langchain-imagegen edit IMAGE... --prompt TEXT [--mask MASK]``, live against the loopback
emulator (``tests/emulator.py``), which parses the multipart body and validates it as the API
does: files by path, handles from earlier runs in the same ``--output-dir``, several images,
a mask, streamed previews, a dry run without a key that shows the files exactly as they are
then sent, references the tool refuses (with the handles to use instead), models that cannot
edit, and the help text."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen.cli import main
from tests.emulator import Emulator, ReceivedFile, encode_image
from tests.unit_tests.conftest import run

pytestmark = [pytest.mark.emulator, pytest.mark.enable_socket,
              pytest.mark.allow_hosts(["127.0.0.1"])]  # fmt: skip

LISTED = re.compile(r"^\d+\. (img_[0-9a-f]{16}): (\S+)$", re.MULTILINE)
PROMPT = "give the fox a red scarf"


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("langchain-imagegen: ")
    return lines[0]


def listed(out: str) -> list[tuple[str, str]]:
    """``(handle, path)`` of each image the result lists."""
    return LISTED.findall(out)


def generated(out_dir: Path, n: int = 1) -> list[tuple[str, str]]:
    code, out = run(["generate", "a fox", "-n", str(n), "--output-dir", str(out_dir)])
    assert code == 0, out
    return listed(out)


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def edits(emulator: Emulator) -> list[Any]:
    return [r.edit for r in emulator.received_requests if r.edit is not None]


def described(file: ReceivedFile) -> dict[str, Any]:
    """A file the emulator received, in the dry run's terms."""
    return {
        "field": file.field,
        "filename": file.filename,
        "content_type": file.content_type,
        "bytes": file.size,
        "sha256": file.sha256[:16],
    }


# --- editing -----------------------------------------------------------------------------


def test_edit_a_generated_image_by_its_path(served: Emulator, tmp_path: Path) -> None:
    ((handle, path),) = generated(tmp_path / "out")

    code, out = run(["edit", path, "--prompt", PROMPT, "--output-dir", str(tmp_path / "out")])

    assert code == 0, out
    assert out.startswith(f"Edited {handle} into 1 image with gpt-image-2.\n")
    ((new_handle, new_path),) = listed(out)
    assert new_handle != handle
    assert sha256(new_path).startswith(new_handle.removeprefix("img_"))
    (edit,) = edits(served)
    (sent,) = edit.files
    assert (sent.field, sent.content_type, sent.sha256) == ("image", "image/png", sha256(path))
    assert dict(edit.fields)["prompt"] == PROMPT


def test_edit_by_handle_from_the_same_output_dir_records_the_lineage(
    served: Emulator, tmp_path: Path
) -> None:
    out_dir = str(tmp_path / "out")
    ((handle, path),) = generated(tmp_path / "out")

    code, out = run(["edit", handle, "--prompt", PROMPT, "--output-dir", out_dir, "--json"])

    assert code == 0, out
    result = json.loads(out)
    assert result["inputs"] == [handle]
    assert result["mask"] is None
    (edit,) = edits(served)
    assert [f.sha256 for f in edit.files] == [sha256(path)]

    # The edit's own handle is editable in turn: an edit of an edit.
    new_handle = "img_" + result["images"][0]["sha256"][:16]
    code, out = run(["edit", new_handle, "--prompt", "now a blue hat", "--output-dir", out_dir])
    assert code == 0, out
    assert out.startswith(f"Edited {new_handle} into 1 image")


def test_two_images_go_as_image_array_parts_in_order(served: Emulator, tmp_path: Path) -> None:
    (first, first_path), (second, second_path) = generated(tmp_path / "out", n=2)
    own = tmp_path / "mine" / "photo.png"
    own.parent.mkdir()
    own.write_bytes(encode_image("png", 512, 512, tag="photo"))

    code, out = run(["edit", second, str(own), first, "--prompt", "one scene with all three",
                     "--output-dir", str(tmp_path / "out")])  # fmt: skip

    assert code == 0, out
    own_handle = "img_" + sha256(own)[:16]
    assert out.startswith(f"Edited {second}, {own_handle}, {first} into 1 image")
    (edit,) = edits(served)
    assert [(f.field, f.sha256) for f in edit.files] == [
        ("image[]", sha256(second_path)),
        ("image[]", sha256(own)),
        ("image[]", sha256(first_path)),
    ]


def test_a_mask_is_sent_as_the_mask_part(served: Emulator, tmp_path: Path) -> None:
    ((handle, path),) = generated(tmp_path / "out")
    mask = tmp_path / "masks" / "top-half.png"
    mask.parent.mkdir()
    mask.write_bytes(encode_image("png", 1024, 1024, transparent=True, tag="mask"))
    mask_handle = "img_" + sha256(mask)[:16]

    code, out = run(["edit", path, "--prompt", "a hat", "--mask", str(mask),
                     "--output-dir", str(tmp_path / "out"), "--json"])  # fmt: skip

    assert code == 0, out
    result = json.loads(out)
    assert (result["inputs"], result["mask"]) == ([handle], mask_handle)
    (edit,) = edits(served)
    assert [(f.field, f.sha256, f.has_alpha) for f in edit.files] == [
        ("image", sha256(path), False),
        ("mask", sha256(mask), True),
    ]


def test_a_mask_of_other_dimensions_is_refused_before_sending(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ((_, path),) = generated(tmp_path / "out")
    mask = tmp_path / "small-mask.png"
    mask.write_bytes(encode_image("png", 64, 64, transparent=True))

    code, _ = run(["edit", path, "--prompt", "a hat", "--mask", str(mask),
                   "--output-dir", str(tmp_path / "out")])  # fmt: skip

    assert code == 2
    assert "the mask must have the first image's dimensions" in one_error_line(capsys)
    assert edits(served) == []


def test_a_symlinked_file_is_read_where_it_really_is(served: Emulator, tmp_path: Path) -> None:
    real = tmp_path / "library" / "fox.png"
    real.parent.mkdir()
    real.write_bytes(encode_image("png", 256, 256, tag="fox"))
    link = tmp_path / "desk" / "fox.png"
    link.parent.mkdir()
    link.symlink_to(real)

    code, out = run(["edit", str(link), "--prompt", PROMPT, "--output-dir", str(tmp_path / "o")])

    assert code == 0, out
    assert [f.sha256 for f in edits(served)[0].files] == [sha256(real)]


def test_streamed_previews_of_an_edit_are_printed_on_stderr(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ((_, path),) = generated(tmp_path / "out")
    capsys.readouterr()

    code, out = run(["edit", path, "--prompt", PROMPT, "--partial-images", "2",
                     "--output-dir", str(tmp_path / "out")])  # fmt: skip

    assert code == 0, out
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "preview 1/2 of image 1",
        "preview 2/2 of image 1",
    ]
    (edit,) = edits(served)
    assert dict(edit.fields)["stream"] == "true"
    assert dict(edit.fields)["partial_images"] == "2"
    assert "preview-" not in out


# --- dry run -----------------------------------------------------------------------------


def test_dry_run_needs_no_key_and_shows_the_files_as_they_are_sent(
    served: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = str(tmp_path / "out")
    (first, _), (_, second_path) = generated(tmp_path / "out", n=2)
    mask = tmp_path / "mask.png"
    mask.write_bytes(encode_image("png", 1024, 1024, transparent=True, tag="m"))
    argv = ["edit", first, second_path, "--prompt", PROMPT, "--mask", str(mask), "-n", "2",
            "--size", "16:9", "--output-dir", out_dir]  # fmt: skip
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    served.reset()

    code, out = run([*argv, "--dry-run", "--json"])

    assert code == 0, out
    assert served.received_requests == []
    report = json.loads(out)
    assert report["requests"] == [
        {"model": "gpt-image-2", "prompt": PROMPT, "size": "1360x768", "n": 2}
    ]
    assert [a["field"] for a in report["adjustments"]] == ["size"]
    assert [f["input"] for f in report["files"]] == ["image 1", "image 2", "mask"]
    assert [f["from"] for f in report["files"]] == [first, second_path, str(mask)]

    monkeypatch.setenv("OPENAI_API_KEY", served.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", served.base_url)
    code, out = run(argv)

    assert code == 0, out
    (edit,) = edits(served)
    shown = [{k: f[k] for k in ("field", "filename", "content_type", "bytes", "sha256")}
             for f in report["files"]]  # fmt: skip
    assert shown == [described(file) for file in edit.files]
    fields = dict(edit.fields)
    assert {k: fields[k] for k in ("model", "prompt", "size", "n")} == {
        "model": "gpt-image-2",
        "prompt": PROMPT,
        "size": "1360x768",
        "n": "2",
    }


def test_dry_run_text_describes_each_file_never_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_image("png", 64, 64, tag="photo"))
    digest = sha256(photo)

    code, out = run(["edit", str(photo), "--prompt", "a hat", "--dry-run"])

    assert code == 0
    assert out.splitlines() == [
        "1 request(s) to gpt-image-2, each a multipart/form-data POST to /images/edits:",
        '  {"model": "gpt-image-2", "prompt": "a hat"}',
        "files, in each request:",
        f"  image: {digest[:16]}.png, image/png, {photo.stat().st_size:,} bytes, "
        f"sha256 {digest[:16]}..., from {photo}",
        "no adjustments",
        "estimated cost: about $0.21",
        *out.splitlines()[-1:],  # the assumption (tests/unit_tests/test_cli_cost.py)
    ]
    assert not (tmp_path / "generated_images").exists()


def test_dry_run_with_a_link_downloads_nothing_and_hides_its_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sockets to anything but 127.0.0.1 are refused here: a download would fail the test.
    monkeypatch.delenv("OPENAI_API_KEY")
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_image("png", 64, 64, tag="photo"))
    link = "https://images.example/cat.png?sig=s3cr3t-signature"

    code, out = run(["edit", str(photo), link, "--prompt", "both", "--dry-run"])

    assert code == 0, out
    assert "  image 2: downloaded when sent, from https://images.example/cat.png\n" in out
    assert "s3cr3t" not in out
    assert "note: links are downloaded when the edit is sent" in out


def test_dry_run_fits_the_inputs_to_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    wide = tmp_path / "wide.png"
    wide.write_bytes(encode_image("png", 96, 64))

    code, _ = run(["edit", str(wide), "--prompt", "a hat", "--model", "dall-e-2", "--dry-run"])

    assert code == 2
    assert "is 96x64, but the model edits only square images" in one_error_line(capsys)


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("img_0123456789abcdef", "no image has the handle img_0123456789abcdef"),
        ("file:///etc/passwd", "file:// URLs are not accepted"),
        ("s3://someone-elses-bucket/cat.png", "is not in this tool's storage"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["sent", "dry-run"])
def test_a_refused_reference_exits_2_naming_the_handles_to_use(
    served: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reference: str,
    problem: str,
    dry_run: bool,
) -> None:
    ((handle, _),) = generated(tmp_path / "out")
    capsys.readouterr()
    served.reset()

    code, out = run(["edit", reference, "--prompt", PROMPT, "--output-dir",
                     str(tmp_path / "out"), *(["--dry-run"] if dry_run else [])])  # fmt: skip

    assert (code, out) == (2, "")
    line = one_error_line(capsys)
    assert problem in line
    assert f"refer to an earlier image by its handle: {handle}" in line
    assert served.received_requests == []


def test_a_file_that_is_not_an_image_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")

    code, _ = run(["edit", str(notes), str(tmp_path / "missing.png"), "--prompt", "x",
                   "--dry-run"])  # fmt: skip

    assert code == 2
    assert "cannot be edited: its bytes are" in one_error_line(capsys)


@pytest.mark.parametrize("dry_run", [False, True], ids=["sent", "dry-run"])
def test_dall_e_3_is_refused_before_anything_is_sent(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_image("png", 64, 64))

    code, out = run(["edit", str(photo), "--prompt", "x", "--model", "dall-e-3",
                     *(["--dry-run"] if dry_run else [])])  # fmt: skip

    assert (code, out) == (2, "")
    line = one_error_line(capsys)
    assert "dall-e-3 cannot edit images; the models that can are dall-e-2, gpt-image-1" in line
    assert "generate it instead" in line
    assert served.received_requests == []


def test_a_gateway_model_declared_like_dall_e_3_is_refused_with_its_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(["edit", str(tmp_path / "x.png"), "--prompt", "x", "--model", "my-model",
                   "--model-family", "dall-e-3", "--dry-run"])  # fmt: skip

    assert code == 2
    assert "dall-e-3 cannot edit images" in one_error_line(capsys)


def test_no_key_without_dry_run_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_image("png", 64, 64))

    code, _ = run(["edit", str(photo), "--prompt", "x"])

    assert code == 3
    assert "no API key" in one_error_line(capsys)


def test_prompt_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["edit", "photo.png"])
    assert exited.value.code == 2
    assert "--prompt" in capsys.readouterr().err


def test_python_m_edit_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "langchain_imagegen", "edit", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: langchain-imagegen edit ")
    options = [
        "IMAGE [IMAGE ...]",
        "--prompt PROMPT",
        "--mask MASK",
        "--dry-run",
        "--partial-images N",
        "--storage-option KEY=VALUE",
        "input_fidelity=high",
    ]
    assert [option for option in options if option not in done.stdout] == []
    assert "--style" not in done.stdout  # the edits endpoint has no style
