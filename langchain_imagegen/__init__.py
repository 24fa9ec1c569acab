"""langchain-imagegen: an image-generation tool for LangChain over OpenAI-compatible endpoints."""

import importlib
from typing import TYPE_CHECKING, Any

from langchain_imagegen.coercion import Adjustment, CoercionResult, coerce_params
from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    BudgetExceededError,
    ConfigurationError,
    ContentPolicyError,
    CorruptImageError,
    ImageDownloadError,
    ImageGenError,
    InternalServerError,
    InvalidArgumentError,
    MalformedResponseError,
    MissingCredentialError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StorageError,
)
from langchain_imagegen.events import EVENT_NAME
from langchain_imagegen.registry import (
    ImageModelProfile,
    SizeRule,
    get_profile,
    register_model,
    register_profile,
)
from langchain_imagegen.schema import build_args_schema

if TYPE_CHECKING:
    from langchain_imagegen.edit_tool import AzureImageEditTool, ImageEditTool, image_tools
    from langchain_imagegen.notebook import AsyncNotebookPreviews, NotebookPreviews
    from langchain_imagegen.result import GeneratedImage, ImageGenerationResult
    from langchain_imagegen.storage import (
        LocalImageStore,
        RemoteImageStore,
        SavedImage,
        open_store,
    )
    from langchain_imagegen.tool import AzureImageGenerationTool, ImageGenerationTool

# Imported on first use (PEP 562): the tool pulls in langchain_core's BaseTool and tracers
# (~0.5 s), which ``import langchain_imagegen`` for coercion or the registry should not pay.
_LAZY = {
    "AzureImageEditTool": "langchain_imagegen.edit_tool",
    "ImageEditTool": "langchain_imagegen.edit_tool",
    "image_tools": "langchain_imagegen.edit_tool",
    "AzureImageGenerationTool": "langchain_imagegen.tool",
    "ImageGenerationTool": "langchain_imagegen.tool",
    "AsyncNotebookPreviews": "langchain_imagegen.notebook",
    "NotebookPreviews": "langchain_imagegen.notebook",
    "GeneratedImage": "langchain_imagegen.result",
    "ImageGenerationResult": "langchain_imagegen.result",
    "LocalImageStore": "langchain_imagegen.storage",
    "RemoteImageStore": "langchain_imagegen.storage",
    "SavedImage": "langchain_imagegen.storage",
    "open_store": "langchain_imagegen.storage",
}

__all__ = [
    "EVENT_NAME",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Adjustment",
    "AsyncNotebookPreviews",
    "AuthenticationError",
    "AzureImageEditTool",
    "AzureImageGenerationTool",
    "BadRequestError",
    "BillingError",
    "BudgetExceededError",
    "CoercionResult",
    "ConfigurationError",
    "ContentPolicyError",
    "CorruptImageError",
    "GeneratedImage",
    "ImageDownloadError",
    "ImageEditTool",
    "ImageGenError",
    "ImageGenerationResult",
    "ImageGenerationTool",
    "ImageModelProfile",
    "InternalServerError",
    "InvalidArgumentError",
    "LocalImageStore",
    "MalformedResponseError",
    "MissingCredentialError",
    "ModelNotFoundError",
    "NotebookPreviews",
    "PermissionDeniedError",
    "RateLimitError",
    "RemoteImageStore",
    "SavedImage",
    "SizeRule",
    "StorageError",
    "build_args_schema",
    "coerce_params",
    "get_profile",
    "image_tools",
    "open_store",
    "register_model",
    "register_profile",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
