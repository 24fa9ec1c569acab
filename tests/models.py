"""The model names the issue requires, listed here rather than read from the registry, so
that a model dropped from the registry fails the tests instead of vanishing from them."""

KNOWN_MODELS = (
    "dall-e-2",
    "dall-e-3",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "chatgpt-image-latest",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
)
