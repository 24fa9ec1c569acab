"""Requests the real API answered with 200 must pass through coercion unchanged.

The recordings vendored in ``tests/data/recorded`` (see ``tests/data/recorded/SOURCES.md``
and ``tests/conformance_data.py``) are the best evidence of what the API accepts. A recorded
body is a whole request as a developer wrote it, so it is coerced as ``fixed`` (the
developer's values); split into the LLM's share and the developer's, it gives the same body.
Coercion always sends ``model`` explicitly (docs/models.md#lifecycle), so bodies are compared
without it:

* an omitted ``model`` meant the API default at the time, ``dall-e-2`` (docs/models.md);
* the Azure REST-spec example addresses a deployment, not a model; its deployment is DALL·E 3.

One recorded success is deliberately *not* reproduced: see
:func:`test_dall_e_2_quality_is_dropped_despite_the_2024_success`.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_imagegen.coercion import coerce_params
from langchain_imagegen.registry import get_profile
from tests.conformance_data import RecordedExchange, exchange, load_exchanges

AZURE_EXAMPLE = "azure-rest-api-specs-example/image_generation.json"
OPENLLMETRY = "openllmetry/test_image_gen_metrics.yaml"
# Feb 2024: dall-e-2 + quality "standard" -> 200. Mar 2026: the same body -> 400
# unknown_parameter (#1, #2), and without quality -> 200 (#3, #4). docs/models.md#dall-e-2.
QUALITY_ON_DALL_E_2_2024 = f"{OPENLLMETRY}#0"
QUALITY_ON_DALL_E_2_2026 = (f"{OPENLLMETRY}#1", f"{OPENLLMETRY}#2")
DELIBERATE_EXCEPTIONS = {QUALITY_ON_DALL_E_2_2024}


def _model_for(ex: RecordedExchange) -> str:
    if ex.source.startswith(AZURE_EXAMPLE):
        return "dall-e-3"  # the example's deployment serves DALL·E 3
    return ex.model or "dall-e-2"  # the API default when model is omitted (docs/models.md)


def _without_model(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "model"}


def _successes() -> list[RecordedExchange]:
    return [ex for ex in load_exchanges() if ex.status == 200 and ex.request_body is not None]


SUCCESSES = _successes()


@pytest.mark.parametrize(
    "ex",
    [ex for ex in SUCCESSES if ex.source not in DELIBERATE_EXCEPTIONS],
    ids=lambda ex: ex.source,
)
def test_accepted_request_passes_through_unchanged(ex: RecordedExchange) -> None:
    assert ex.request_body is not None
    model = _model_for(ex)
    result = coerce_params(model, {}, fixed=ex.request_body)
    assert result.adjustments == (), [a.describe() for a in result.adjustments]
    offered = get_profile(model).llm_fields()
    llm = {k: v for k, v in ex.request_body.items() if k in offered}
    developer = {k: v for k, v in ex.request_body.items() if k not in offered}
    assert coerce_params(model, llm, fixed=developer) == result
    assert len(result.requests) == 1
    body = result.requests[0]
    assert body["model"] == model
    assert _without_model(body) == _without_model(ex.request_body)
    # the key order may differ; the JSON values (and their types) may not
    for key, value in ex.request_body.items():
        assert type(body[key]) is type(value), key


def test_the_corpus_covers_every_openai_family() -> None:
    """Guard against the loader silently finding fewer recordings than SOURCES.md lists."""
    models = {_model_for(ex) for ex in SUCCESSES}
    assert {"dall-e-2", "dall-e-3", "gpt-image-1"} <= models
    assert len(SUCCESSES) >= 20
    assert any(ex.source.startswith(AZURE_EXAMPLE) for ex in SUCCESSES)
    assert any(ex.model is None and ex.live for ex in SUCCESSES)


def test_dall_e_2_quality_is_dropped_despite_the_2024_success() -> None:
    """openllmetry #0 (Feb 2024): dall-e-2 with ``quality: standard`` answered 200.

    The identical body answered 400 ``unknown_parameter`` in Mar 2026 (#1, #2) and succeeded
    again without ``quality`` (#3, #4). Coercion follows the current API (docs/models.md): it
    drops ``quality`` for dall-e-2 and reports it, and the result is exactly what succeeded.
    """
    then = exchange(QUALITY_ON_DALL_E_2_2024)
    assert then.status == 200
    assert then.request_body is not None
    assert then.request_body["quality"] == "standard"
    for source in QUALITY_ON_DALL_E_2_2026:
        now = exchange(source)
        assert now.request_body == then.request_body
        assert now.status == 400
        error = now.response_json()["error"]
        assert (error["code"], error["param"]) == ("unknown_parameter", "quality")

    result = coerce_params("dall-e-2", {}, fixed=then.request_body)
    assert result.requests == ({k: v for k, v in then.request_body.items() if k != "quality"},)
    (adjustment,) = result.adjustments
    assert (adjustment.field, adjustment.proposed, adjustment.applied) == (
        "quality",
        "standard",
        None,
    )
    assert "dall-e-2 takes no quality" in adjustment.reason
    accepted_later = [exchange(f"{OPENLLMETRY}#{k}") for k in (3, 4)]
    assert all(ex.status == 200 for ex in accepted_later)
    assert all(result.requests[0] == ex.request_body for ex in accepted_later)


def test_recorded_rejections_are_fixed_by_coercion() -> None:
    """The 400s on record name a parameter; coercion never sends it to that model."""
    rejected = [ex for ex in load_exchanges() if ex.status == 400 and ex.request_body]
    assert rejected
    for ex in rejected:
        assert ex.request_body is not None
        param = ex.response_json()["error"]["param"]
        result = coerce_params(_model_for(ex), {}, fixed=ex.request_body)
        assert all(param not in body for body in result.requests), ex.source
        assert param in {a.field for a in result.adjustments}
