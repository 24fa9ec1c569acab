"""langchain-tests standard unit tests (no network) for both tool classes."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ToolsUnitTests

from langchain_imagegen.tool import AzureImageGenerationTool, ImageGenerationTool


class TestImageGenerationToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[ImageGenerationTool]:
        return ImageGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"api_key": "sk-unit-standard-0000", "model": "gpt-image-2"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {
            "prompt": "a lighthouse at dawn, watercolor",
            "size": "1536x1024",
            "n": 1,
            "quality": "medium",
            "output_format": "png",
        }

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "OPENAI_API_KEY": "sk-from-env-0000",
                "OPENAI_BASE_URL": "https://gateway.example/v1",
                "OPENAI_ORG_ID": "org-from-env",
                "OPENAI_PROJECT_ID": "proj_from_env",
            },
            {"model": "gpt-image-1"},
            {
                "api_key": "sk-from-env-0000",
                "base_url": "https://gateway.example/v1",
                "organization": "org-from-env",
                "project": "proj_from_env",
                "model": "gpt-image-1",
            },
        )


class TestAzureImageGenerationToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[AzureImageGenerationTool]:
        return AzureImageGenerationTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {
            "api_key": "azure-unit-key-0000",
            "azure_endpoint": "https://example-resource.openai.azure.com",
            "model": "images",
        }

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"prompt": "a copper teapot on a wooden table", "size": "1024x1024", "n": 2}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "AZURE_OPENAI_API_KEY": "azure-key-from-env",
                "AZURE_OPENAI_ENDPOINT": "https://example-resource.openai.azure.com",
                "OPENAI_API_VERSION": "2025-04-01-preview",
                # Must not be picked up: Azure reads its own key.
                "OPENAI_API_KEY": "sk-openai-not-for-azure",
            },
            {"model": "images"},
            {
                "api_key": "azure-key-from-env",
                "azure_endpoint": "https://example-resource.openai.azure.com",
                "api_version": "2025-04-01-preview",
                "model": "images",
            },
        )
