"""langchain-tests standard integration tests, replayed from cassettes.

Record with ``pytest tests/integration_tests/test_standard.py --record-mode=once``: the
``images_base_url`` fixture then points the tool at the loopback emulator (or at
``IMAGEGEN_RECORD_BASE_URL`` with a real ``OPENAI_API_KEY``); on replay it is a placeholder
host that only the cassettes answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolCall, ToolMessage
from langchain_tests.integration_tests import ToolsIntegrationTests

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import ImageGenerationTool


class TestImageGenerationToolIntegration(ToolsIntegrationTests):
    pytestmark = pytest.mark.vcr  # one cassette per test: Class.test_name.yaml.gz

    @pytest.fixture(autouse=True)
    def _endpoint(self, images_base_url: str, tmp_path: Path) -> None:
        """``tool_constructor_params`` is a property, so the function-scoped base URL and
        output directory reach it through the test instance (shared with this fixture)."""
        self._base_url = images_base_url
        self._output_dir = tmp_path / "images"

    @property
    def tool_constructor(self) -> type[ImageGenerationTool]:
        return ImageGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        # The key comes from OPENAI_API_KEY (a dummy on replay, see tests/conftest.py).
        return {
            "model": "gpt-image-1",
            "base_url": self._base_url,
            "output_dir": str(self._output_dir),
        }

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a red fox in fresh snow, watercolor", "size": "1024x1024", "n": 1}

    def test_invoke_saves_the_image(self, tool: ImageGenerationTool) -> None:
        """The standard tests check shapes only; this one checks the call really worked."""
        message = tool.invoke(
            ToolCall(name=tool.name, args=self.tool_invoke_params_example, id="1", type="tool_call")
        )
        assert isinstance(message, ToolMessage)
        assert message.status == "success", message.content
        result = message.artifact
        assert isinstance(result, ImageGenerationResult)
        (image,) = result.images
        assert image.path is not None
        assert Path(image.path).parent == self._output_dir
        assert Path(image.path).read_bytes().startswith(b"\x89PNG")
        lines = message.content.splitlines()
        assert lines[:3] == [
            "Generated 1 image with gpt-image-1.",
            f"1. {image.handle}: {image.path}",
            f"Size: {image.size}.",  # recorded against the emulator or the real API
        ]
        tool.close()
