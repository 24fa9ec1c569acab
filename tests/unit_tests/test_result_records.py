"""How a call's records are built: what coercion changed and what each request did."""

from __future__ import annotations

from pathlib import Path

import httpx

from langchain_imagegen.coercion import Adjustment
from langchain_imagegen.result import AdjustmentRecord, RequestRecord
from langchain_imagegen.tool import ImageGenerationTool


def test_an_adjustment_record_holds_copies_of_the_values() -> None:
    proposed = {"width": 900, "height": [1600]}
    adjustment = Adjustment("size", proposed, ["1024x1792"], "nearest size")

    record = AdjustmentRecord.of(adjustment)

    assert record.model_dump() == {
        "field": "size",
        "proposed": {"width": 900, "height": [1600]},
        "applied": ["1024x1792"],
        "reason": "nearest size",
    }
    record.proposed["height"].append(1)
    record.applied.append("x")
    assert proposed == {"width": 900, "height": [1600]}
    assert adjustment.applied == ["1024x1792"]


def test_the_artifact_records_each_request_and_every_change(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        data = [{"url": "https://files.example/a.png"}, {"url": "https://files.example/b.png"}]
        headers = {"x-request-id": "req_1"}
        return httpx.Response(200, json={"created": 1, "data": data}, headers=headers)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    tool = ImageGenerationTool(
        model="dall-e-2",
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        output_dir=str(tmp_path),
        http_client=http,
    )

    result = tool.generate({"prompt": "a fox", "n": "two", "size": "portrait"})

    assert [a.field for a in result.adjustments] == ["size", "n"]
    assert result.adjustments[1].model_dump() == {
        "field": "n",
        "proposed": "two",
        "applied": 2,
        "reason": "read 'two' as 2",
    }
    [record] = result.requests
    assert isinstance(record, RequestRecord)
    assert record.body["n"] == 2
    assert (record.images, record.attempts, record.request_id, record.error) == (
        2,
        1,
        "req_1",
        None,
    )
    assert record.elapsed_s >= 0
    assert result.images_requested == 2
    assert [image.url for image in result.images] == [
        "https://files.example/a.png",
        "https://files.example/b.png",
    ]
