"""Edit images: the ``edit_image`` tools, and the pair of tools an agent is given.

An edit tool is a generation tool that calls ``POST /images/edits`` instead: the same
configuration fields, endpoint, retries, storage, events and artifact. What it adds:

* its args schema comes from the model's edit rules (:meth:`ImageModelProfile.edits`):
  the prompt, the images to edit and an optional mask, as **handles** (``img_<hash16>``)
  that earlier results gave the LLM, or their links;
* a reference is read only from the tool's own storage, by download when it is an http(s)
  URL, or from a directory the developer allows (``allowed_dirs``); never from a path an
  LLM made up (:mod:`~langchain_imagegen.handles`);
* the inputs are fitted to the model (format, size, mask) and what was done is reported
  with the other adjustments (:mod:`~langchain_imagegen.edit_inputs`);
* the result records its inputs' handles, so edits of edits keep their lineage.

:func:`image_tools` returns the generation tool and, when the model can edit, the edit
tool, configured alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from langchain_imagegen.coercion import EditPlan, coerce_edit_params
from langchain_imagegen.edit_inputs import PreparedInputs, prepare_edit_inputs
from langchain_imagegen.errors import ConfigurationError
from langchain_imagegen.generation import AsyncEventSink, Edit, EventSink
from langchain_imagegen.handles import ImageResolver, InputImage
from langchain_imagegen.limits import ImagesPerMinute
from langchain_imagegen.pricing import CostEstimate
from langchain_imagegen.registry import ImageModelProfile
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.schema import build_edit_args_schema
from langchain_imagegen.tool import (
    AzureImageGenerationTool,
    BaseImageGenerationTool,
    ImageGenerationTool,
)

__all__ = ["AzureImageEditTool", "BaseImageEditTool", "ImageEditTool", "fit_edit", "image_tools"]


class BaseImageEditTool(BaseImageGenerationTool):
    """What both edit tools add to their generation tool (see the module docstring)."""

    name: str = "edit_image"
    allowed_dirs: list[str] = Field(default_factory=list)
    """Local directories whose images the LLM may name by path, besides the tool's own
    storage (handles, storage URIs) and http(s) links. Empty by default: an LLM never
    reads a file it was not given."""

    # --- configuration -------------------------------------------------------------------

    def _resolve_profile(self) -> ImageModelProfile:
        profile = super()._resolve_profile()
        why = profile.cannot_edit()
        if why is not None:
            raise ConfigurationError(f"{why} (a gateway's model: declare its model_family=)")
        return profile

    def _derive_schema(self, profile: ImageModelProfile, hidden: set[str]) -> Any:
        return build_edit_args_schema(profile, max_images=self.max_images, hidden=hidden)

    def _derive_description(self, profile: ImageModelProfile) -> str:
        edits = profile.edits
        most = edits.max_images if edits is not None else 1
        images = "an earlier image" if most == 1 else f"up to {most} earlier images"
        return (
            f"Edit {images} with {profile.name}: pass their handles (img_...) or links from "
            "earlier results and say what to change; an optional mask's transparent areas "
            "mark where. Returns the new images with their handles, so they can be edited "
            "again. Arguments that don't fit the model are adjusted and the changes reported."
        )

    # --- calls ---------------------------------------------------------------------------

    def coerce_edit(self, args: Mapping[str, Any]) -> EditPlan:
        """The requests these LLM arguments become (form fields; the images still as
        references): developer-fixed values win, ``extra_body`` is merged into each."""
        return self._coerced(coerce_edit_params, args)

    def edit(
        self,
        args: Mapping[str, Any],
        *,
        on_event: EventSink | None = None,
        regenerate: bool = False,
    ) -> ImageGenerationResult:
        """Edit images outside LangChain; raises :class:`ImageGenError` subclasses (an
        unknown or refused reference is an :class:`InvalidArgumentError` that lists the
        handles the LLM may use)."""
        plan = self.coerce_edit(args)
        resolver = self._resolver()
        images = [resolver.resolve(ref) for ref in plan.images]
        mask = resolver.resolve(plan.mask) if plan.mask else None
        plan, edit, converted = fit_edit(plan, images, mask)
        for image in converted:  # what is sent is kept: the lineage's handles resolve
            self.store.save(image.data)
        return self._carry_out(plan, edit, on_event, regenerate)

    async def aedit(
        self,
        args: Mapping[str, Any],
        *,
        on_event: AsyncEventSink | None = None,
        regenerate: bool = False,
    ) -> ImageGenerationResult:
        """Async :meth:`edit`."""
        plan = self.coerce_edit(args)
        resolver = self._resolver()
        images = [await resolver.aresolve(ref) for ref in plan.images]
        mask = await resolver.aresolve(plan.mask) if plan.mask else None
        plan, edit, converted = await asyncio.to_thread(fit_edit, plan, images, mask)  # Pillow
        for image in converted:
            await self.store.asave(image.data)
        return await self._acarry_out(plan, edit, on_event, regenerate)

    def estimate_cost(self, args: Mapping[str, Any]) -> CostEstimate | None:
        """What this edit would cost, estimated from the published prices, without reading
        or sending anything (the input images' tokens are left out, as the estimate says)."""
        accounting = self._accounting
        assert accounting is not None
        plan = self.coerce_edit(args)
        return accounting.estimate(plan, input_images=len(plan.images))

    def _call(self, args: Mapping[str, Any], on_event: EventSink | None) -> ImageGenerationResult:
        return self.edit(args, on_event=on_event)

    async def _acall(
        self, args: Mapping[str, Any], on_event: AsyncEventSink | None
    ) -> ImageGenerationResult:
        return await self.aedit(args, on_event=on_event)

    def _resolver(self) -> ImageResolver:
        client = self.client
        limit = self.max_download_bytes

        def fetch(url: str) -> tuple[bytes, str | None]:
            return client.download(url, max_bytes=limit)

        async def afetch(url: str) -> tuple[bytes, str | None]:
            return await client.adownload(url, max_bytes=limit)

        return ImageResolver(
            self.store, allowed_dirs=self.allowed_dirs, fetch=fetch, afetch=afetch, max_bytes=limit
        )


def fit_edit(
    plan: EditPlan, images: list[InputImage], mask: InputImage | None
) -> tuple[EditPlan, Edit, tuple[InputImage, ...]]:
    """What an edit sends: the inputs fitted to the plan's model (or refused, saying why) as
    the files of every request, the plan with what was done to them among its adjustments,
    and the images made by converting an input (kept by the tool, so that the handles in
    the result's lineage resolve). Reads nothing and sends nothing (a dry run uses it)."""
    edits = plan.profile.edits
    assert edits is not None  # a tool refuses a model that cannot edit
    prepared = prepare_edit_inputs(edits, images, mask)
    if prepared.changes:
        plan = dataclasses.replace(plan, adjustments=plan.adjustments + prepared.changes)
    return plan, _edit(prepared), prepared.converted


def _edit(prepared: PreparedInputs) -> Edit:
    # One image goes as ``image``, several as ``image[]`` (as openai-python sends them).
    field = "image" if len(prepared.images) == 1 else "image[]"
    files = [(field, (image.filename, image.data, image.mime_type)) for image in prepared.images]
    mask = prepared.mask
    if mask is not None:
        files.append(("mask", (mask.filename, mask.data, mask.mime_type)))
    sent = (*prepared.images, *(() if mask is None else (mask,)))
    return Edit(
        files,
        inputs=tuple(image.handle for image in prepared.images),
        mask=None if mask is None else mask.handle,
        digests=tuple(image.sha256 for image in sent),
    )


class ImageEditTool(BaseImageEditTool, ImageGenerationTool):
    """Edit images through OpenAI or any OpenAI-compatible Images API (``edit_image``).

    Configured as :class:`ImageGenerationTool` (same fields, same environment variables);
    the LLM names the images to edit by the handles earlier results gave it.

        ```python
        from langchain_imagegen import image_tools

        generate, edit = image_tools(model="gpt-image-2", output_dir="images")
        agent = create_agent(model, tools=[generate, edit])
        ```
    """


class AzureImageEditTool(BaseImageEditTool, AzureImageGenerationTool):
    """Azure OpenAI's edits route (beside the deployment's generations route), configured as
    :class:`AzureImageGenerationTool`."""


_EDIT_ONLY_FIELDS = ("allowed_dirs",)


def image_tools(**config: Any) -> list[BaseImageGenerationTool]:
    """The tools an agent needs: :class:`ImageGenerationTool` and, when the model can edit,
    :class:`ImageEditTool`, both built from ``config`` (any fields of the tools; e.g.
    ``model``, ``output_dir``, ``api_key``). With ``azure_endpoint`` (or ``azure=True``),
    the Azure tools. ``images_per_minute`` becomes one limiter both tools share.
    """
    azure = bool(config.pop("azure", False)) or "azure_endpoint" in config
    if config.get("images_per_minute") and config.get("image_rate_limiter") is None:
        # One limit for both tools: they spend the same images-per-minute allowance.
        config["image_rate_limiter"] = ImagesPerMinute(config["images_per_minute"])
    # Fields only the edit tool has (the generation tool refuses unknown fields).
    edit_only = {name: config.pop(name) for name in _EDIT_ONLY_FIELDS if name in config}
    generate: BaseImageGenerationTool = (
        AzureImageGenerationTool(**config) if azure else ImageGenerationTool(**config)
    )
    if generate.profile.edits is None:
        return [generate]
    edit_config = {**config, **edit_only}
    edit = AzureImageEditTool(**edit_config) if azure else ImageEditTool(**edit_config)
    return [generate, edit]
