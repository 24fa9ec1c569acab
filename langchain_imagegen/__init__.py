"""langchain-imagegen: an image-generation tool for LangChain over OpenAI-compatible endpoints."""

from langchain_imagegen.coercion import Adjustment, CoercionResult, coerce_params
from langchain_imagegen.registry import (
    ModelProfile,
    SizeRule,
    get_profile,
    register_model,
    register_profile,
)
from langchain_imagegen.schema import build_args_schema

__all__ = [
    "Adjustment",
    "CoercionResult",
    "ModelProfile",
    "SizeRule",
    "build_args_schema",
    "coerce_params",
    "get_profile",
    "register_model",
    "register_profile",
]
