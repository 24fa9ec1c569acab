"""The package root's public names, pinned: adding or removing one is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import langchain_imagegen
from langchain_imagegen import errors

PUBLIC = [
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


def test_root_all_is_pinned() -> None:
    assert langchain_imagegen.__all__ == PUBLIC


def test_every_name_resolves() -> None:
    for name in PUBLIC:
        assert getattr(langchain_imagegen, name) is not None, name


def test_every_exception_class_is_importable_from_the_root() -> None:
    classes = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert classes  # the module lists its exception classes
    for name in classes:
        assert getattr(langchain_imagegen, name) is getattr(errors, name), name


def test_importing_the_package_does_not_import_the_tool() -> None:
    code = (
        "import sys, langchain_imagegen\n"
        "from langchain_imagegen import APIError, RateLimitError\n"
        "assert 'langchain_imagegen.tool' not in sys.modules\n"
        "assert 'langchain_core.tools' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
