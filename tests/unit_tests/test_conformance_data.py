"""Tests for tests/conformance_data.py against the vendored recordings in tests/data/recorded.

Expected numbers come from the summary table in tests/data/recorded/SOURCES.md (26 rows,
24 files):

* rows #1-#21 and #22 are one exchange each (22); #23 is interactions 2-3 (2); #24 is
  interactions 4-5 (2); #25 and #26 one each -> **28** exchanges in **24** files.
* errors: 401 ``invalid_api_key`` #9, #10, #17 (3); 400 ``unknown_parameter`` #23 x2 (quality)
  and #25 (response_format, vercel fixture) (3) -> **6** errors, **22** successes.
* models (request ``model``): dall-e-2 #1, #11, #21, #22, #23x2, #24x2 = 8; dall-e-3 #2-#4,
  #12-#15, #17 = 8; gpt-image-1 #5-#10, #16 = 7; omitted #18-#20 (API default dall-e-2) plus the
  vercel fixture (no request) and the Azure example (deployment, no ``model``) = 5.
* gzip (``!!binary``) bodies: #20, #21 (scope3ai-py) and openllmetry interactions 1, 4, 5
  (#22, #24x2) -> 5.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conformance_data import (
    RECORDED_DIR,
    ConformanceFormatError,
    RecordedExchange,
    exchange,
    load_exchanges,
)

EXPECTED_TOTAL = 28
EXPECTED_FILES = 24
EXPECTED_SUCCESS = 22
EXPECTED_ERROR = 6
EXPECTED_STATUS = {200: 22, 401: 3, 400: 3}
EXPECTED_MODELS = {"dall-e-2": 8, "dall-e-3": 8, "gpt-image-1": 7, None: 5}
EXPECTED_GZIP = {
    "openllmetry/test_image_gen_metrics.yaml#0",
    "openllmetry/test_image_gen_metrics.yaml#3",
    "openllmetry/test_image_gen_metrics.yaml#4",
    "scope3ai-py/test_openai_image_wrapper[None-2-None].yaml#0",
    "scope3ai-py/test_openai_image_wrapper[dall-e-2-1-512x512].yaml#0",
}
OPENLLMETRY = "openllmetry/test_image_gen_metrics.yaml"
VERCEL = "vercel-ai-fixture/gpt-image-response-format-error.json#0"
AZURE = "azure-rest-api-specs-example/image_generation.json#0"
SANITIZED_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVQYV2NgAAIAAAUAAarVyFEAAAAASUVORK5CYII="
)


def _file(ex: RecordedExchange) -> str:
    return ex.source.rsplit("#", 1)[0]


def test_recordings_are_inside_the_repo() -> None:
    repo_root = Path(__file__).resolve().parents[2]
    assert repo_root / "tests" / "data" / "recorded" == RECORDED_DIR
    assert RECORDED_DIR.is_dir()
    assert (RECORDED_DIR / "SOURCES.md").is_file()


def test_every_file_has_its_provenance() -> None:
    """Each index entry names the project, the path in it, the commit and the licence; the
    files changed from the originals say so in their notes and in SOURCES.md."""
    index = json.loads((RECORDED_DIR / "index.json").read_text(encoding="utf-8"))
    sources = (RECORDED_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for entry in index:
        assert entry["repo"].count("/") == 1, entry["file"]
        assert len(entry["commit"]) == 40, entry["file"]
        assert entry["source_path"], entry["file"]
        assert "licence" in entry, entry["file"]
        assert entry["file"].rsplit("/", 1)[-1] in sources or entry["file"] in sources
        assert entry["commit"] in sources, entry["file"]
    changed = {e["file"] for e in index if "TRUNCATED" in e["notes"] or "SHRUNK" in e["notes"]}
    assert len(changed) == 3
    for name in changed:
        assert name in sources


def test_the_big_recordings_are_shrunk() -> None:
    """The image downloads in two ruby_llm recordings (1.5 MB and 1 MB of PNG) are replaced
    by a 1x1 PNG; every vendored file stays small."""
    for path in RECORDED_DIR.rglob("*"):
        if path.is_file() and path.name != "image_create_b64_json.yaml":
            assert path.stat().st_size < 20_000, path
    big = RECORDED_DIR / "dd-trace-py" / "image_create_b64_json.yaml"
    assert big.stat().st_size < 300_000  # the one real, unsanitized PNG: kept as recorded


@pytest.fixture(scope="module")
def exchanges() -> list[RecordedExchange]:
    return load_exchanges()


class TestRecorded:
    def test_counts_match_sources_matrix(self, exchanges: list[RecordedExchange]) -> None:
        assert len(exchanges) == EXPECTED_TOTAL
        assert len({_file(e) for e in exchanges}) == EXPECTED_FILES
        kinds = Counter(e.kind for e in exchanges)
        assert kinds == {"success": EXPECTED_SUCCESS, "error": EXPECTED_ERROR}
        assert Counter(e.status for e in exchanges) == EXPECTED_STATUS
        assert Counter(e.model for e in exchanges) == EXPECTED_MODELS
        assert len({e.source for e in exchanges}) == EXPECTED_TOTAL

    def test_every_index_entry_is_loaded(self, exchanges: list[RecordedExchange]) -> None:
        index = json.loads((RECORDED_DIR / "index.json").read_text(encoding="utf-8"))
        assert {entry["file"] for entry in index} == {_file(e) for e in exchanges}
        per_file = Counter(_file(e) for e in exchanges)
        assert per_file[OPENLLMETRY] == 5
        assert all(n == 1 for f, n in per_file.items() if f != OPENLLMETRY)

    def test_only_image_generation_posts(self, exchanges: list[RecordedExchange]) -> None:
        for e in exchanges:
            if e.uri is not None:
                assert e.uri.split("?")[0].endswith("/images/generations"), e.source
        # dotnet chat/completions follow-ups and ruby_llm's blob GET (#1) are dropped.
        assert all(e.source.endswith("#0") for e in exchanges if _file(e) != OPENLLMETRY)

    def test_openllmetry_quality_history(self) -> None:
        accepted = exchange(f"{OPENLLMETRY}#0")  # SOURCES #22
        assert accepted.status == 200
        assert accepted.model == "dall-e-2"
        assert accepted.request_body is not None
        assert accepted.request_body["quality"] == "standard"
        assert "2024" in accepted.response_headers["date"]

        for k in (1, 2):  # SOURCES #23
            rejected = exchange(f"{OPENLLMETRY}#{k}")
            assert rejected.status == 400
            assert rejected.kind == "error"
            assert rejected.request_body is not None
            assert rejected.request_body["quality"] == "standard"
            assert "2026" in rejected.response_headers["date"]
            assert rejected.response_json() == {
                "error": {
                    "message": "Unknown parameter: 'quality'.",
                    "type": "invalid_request_error",
                    "param": "quality",
                    "code": "unknown_parameter",
                }
            }

        for k in (3, 4):  # SOURCES #24
            retried = exchange(f"{OPENLLMETRY}#{k}")
            assert retried.status == 200
            assert retried.request_body is not None
            assert "quality" not in retried.request_body

    def test_gzip_bodies_decode_to_json(self, exchanges: list[RecordedExchange]) -> None:
        gz = {e.source for e in exchanges if e.body_was_gzip}
        assert gz == EXPECTED_GZIP
        for e in exchanges:
            if e.body_was_gzip:
                assert e.response_headers["content-encoding"] == "gzip"
                assert "content-encoding" not in e.replay_headers()
                body = e.response_json()
                assert isinstance(body, dict)
                assert body["data"]

    def test_dd_trace_gzip_header_over_plain_body(self) -> None:
        e = exchange("dd-trace-py/image_create.yaml#0")
        assert e.response_headers["content-encoding"] == "gzip"
        assert not e.body_was_gzip
        assert e.response_json()["data"][0]["url"].startswith("https://")

    def test_success_bodies_have_images(self, exchanges: list[RecordedExchange]) -> None:
        for e in exchanges:
            if e.kind != "success":
                continue
            body = e.response_json()
            assert isinstance(body, dict), e.source
            data = body["data"]
            assert isinstance(data, list), e.source
            assert data, e.source
            for item in data:
                assert ("url" in item) or ("b64_json" in item), e.source
            if e.request_body is not None and isinstance(e.request_body.get("n"), int):
                assert len(data) == e.request_body["n"], e.source

    def test_error_bodies(self, exchanges: list[RecordedExchange]) -> None:
        codes: Counter[tuple[int, str]] = Counter()
        for e in exchanges:
            if e.kind != "error":
                continue
            body = e.response_json()
            assert isinstance(body, dict), e.source
            err = body["error"]
            assert set(err) >= {"message", "type", "param", "code"}, e.source
            assert err["type"] == "invalid_request_error"
            codes[(e.status, err["code"])] += 1
            if e.status == 401 and e.live:
                assert e.response_headers["www-authenticate"].startswith("Bearer"), e.source
        assert codes == {(401, "invalid_api_key"): 3, (400, "unknown_parameter"): 3}

    def test_request_bodies(self, exchanges: list[RecordedExchange]) -> None:
        for e in exchanges:
            if e.source == VERCEL:
                continue
            assert e.request_body is not None, e.source
            assert isinstance(e.request_body["prompt"], str), e.source
            assert e.model == e.request_body.get("model"), e.source

    def test_headers_are_lower_cased(self, exchanges: list[RecordedExchange]) -> None:
        for e in exchanges:
            assert all(k == k.lower() for k in e.response_headers), e.source
            if e.live:
                assert e.response_headers["content-type"].startswith("application/json")

    def test_vercel_body_only_fixture(self) -> None:
        e = exchange(VERCEL)
        assert (e.status, e.kind, e.model, e.uri) == (400, "error", None, None)
        assert e.request_body is None
        assert e.response_headers == {}
        assert not e.live
        assert e.response_json()["error"]["param"] == "response_format"

    def test_azure_spec_example(self) -> None:
        e = exchange(AZURE)
        assert (e.status, e.model, e.live) == (200, None, False)
        assert e.request_body == {
            "prompt": "In the style of WordArt, Microsoft Clippy wearing a cowboy hat.",
            "n": 1,
            "style": "natural",
            "quality": "standard",
        }
        item = e.response_json()["data"][0]
        assert {"revised_prompt", "url", "prompt_filter_results", "content_filter_results"} <= set(
            item
        )

    def test_gpt_image_shapes(self) -> None:
        sept_2025 = exchange("openai-dotnet-1e6e3ddc/GptImage1Works.json#0").response_json()
        assert "output_tokens_details" not in sept_2025["usage"]
        assert sept_2025["data"][0]["b64_json"] == SANITIZED_PNG
        june_2026 = exchange("openai-dotnet-b3b4bbbc/BasicGenerationWorks.json#0").response_json()
        assert "output_tokens_details" in june_2026["usage"]
        assert (june_2026["size"], june_2026["quality"]) == ("1024x1536", "high")
        truncated = exchange(
            "ruby_llm/image_basic_functionality_openai_gpt-image-1_can_paint_images.yml#0"
        ).response_json()
        assert "[TRUNCATED" in truncated["data"][0]["b64_json"]

    def test_real_b64_png_decodes(self) -> None:
        body = exchange("dd-trace-py/image_create_b64_json.yaml#0").response_json()
        png = base64.b64decode(body["data"][0]["b64_json"], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")


# ---- loader strictness (synthetic directories) ------------------------------------------------


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


VCRPY_IMAGE = """\
interactions:
- request:
    body: '{"prompt": "x", "model": "dall-e-2"}'
    method: POST
    uri: https://api.openai.com/v1/images/generations
  response:
    body:
      string: '{"created": 1, "data": [{"url": "https://example.invalid/a.png"}]}'
    headers:
      Content-Type:
      - application/json
    status:
      code: 200
      message: OK
"""


def test_minimal_vcrpy_directory_loads(tmp_path: Path) -> None:
    _write(tmp_path, "x/one.yaml", VCRPY_IMAGE)
    [e] = load_exchanges(tmp_path)
    assert (e.source, e.model, e.status, e.kind) == ("x/one.yaml#0", "dall-e-2", 200, "success")
    assert e.response_headers == {"content-type": "application/json"}


def test_ruby_binary_tag_is_base64(tmp_path: Path) -> None:
    body = base64.b64encode(b'{"created": 1, "data": [{"b64_json": "AA=="}]}').decode()
    _write(
        tmp_path,
        "r.yml",
        "http_interactions:\n"
        "- request:\n"
        "    method: post\n"
        "    uri: https://api.openai.com/v1/images/generations\n"
        "    body:\n"
        '      string: \'{"prompt":"x"}\'\n'
        "  response:\n"
        "    status:\n"
        "      code: 200\n"
        "    headers: {}\n"
        "    body:\n"
        f"      string: !binary |-\n        {body}\n",
    )
    [e] = load_exchanges(tmp_path)
    assert e.model is None
    assert e.response_json() == {"created": 1, "data": [{"b64_json": "AA=="}]}


@pytest.mark.parametrize(
    ("rel", "text", "match"),
    [
        ("odd.yaml", "something_else: []\n", "unrecognised recording format"),
        ("odd.json", '{"foo": 1}', "unrecognised recording format"),
        ("odd.har", "{}", "unsupported file type"),
        ("body.json", '{"error": {"code": "unknown_parameter"}}', "unrecognised recording format"),
        (
            "chat.yaml",
            VCRPY_IMAGE.replace("/v1/images/generations", "/v1/chat/completions"),
            "no POST /images/generations exchange",
        ),
    ],
)
def test_unknown_files_raise(tmp_path: Path, rel: str, text: str, match: str) -> None:
    _write(tmp_path, rel, text)
    with pytest.raises(ConformanceFormatError, match=match):
        load_exchanges(tmp_path)


def test_index_entries_must_exist(tmp_path: Path) -> None:
    _write(tmp_path, "index.json", json.dumps([{"file": "gone.yaml", "format": "vcrpy"}]))
    with pytest.raises(ConformanceFormatError, match="not on disk"):
        load_exchanges(tmp_path)


def test_index_format_must_agree(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", VCRPY_IMAGE)
    _write(tmp_path, "index.json", json.dumps([{"file": "a.yaml", "format": "ruby-vcr"}]))
    with pytest.raises(ConformanceFormatError, match="says 'ruby-vcr', content is 'vcrpy'"):
        load_exchanges(tmp_path)


def test_body_only_fixture_needs_index_and_known_status(tmp_path: Path) -> None:
    _write(tmp_path, "b.json", '{"error": {"code": "mystery", "message": "?"}}')
    _write(tmp_path, "index.json", json.dumps([{"file": "b.json", "format": "body-only-fixture"}]))
    with pytest.raises(ConformanceFormatError, match="no known status"):
        load_exchanges(tmp_path)
