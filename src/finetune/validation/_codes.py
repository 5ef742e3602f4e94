"""The codes a finding can have: each one's severity and what it means (the rule reference
in docs/validation-rules.md lists them all, and a test holds the two together)."""

from __future__ import annotations

__all__ = ["RULES"]

RULES: dict[str, tuple[str, str]] = {
    "blank_line": ("warning", "A blank line; ignored by us, rejected by some providers."),
    "not_jsonl": (
        "error",
        "The file is binary (zip, Parquet, UTF-16), "
        "one JSON document (an array, a pretty-printed object), or JSONL whose lines end in a "
        "bare carriage return (classic Mac OS): reading stops at line 1. Read as JSON "
        "(from_json): an object holding several lists of objects (field= names the one "
        "that holds the examples), or none under the field= given.",
    ),
    "invalid_utf8": ("error", "The line is not valid UTF-8."),
    "invalid_json": ("error", "The line is not valid JSON."),
    "invalid_csv": (
        "error",
        "A CSV file's row has more cells than its header names columns, its header names a "
        "column twice or none, its quoting is broken, or it is JSON read as CSV.",
    ),
    "truncated_line": ("error", "The last line is cut short: the file looks truncated."),
    "not_an_object": ("error", "The line is JSON but not an object."),
    "line_too_long": ("error", "The line exceeds the reader's size cap."),
    "unknown_format": (
        "error",
        "Neither chat, completion nor preference shape; a row of plain text, or of two texts "
        "under other names (`question`, `answer`), is told how to write it.",
    ),
    "mixed_kinds": (
        "error",
        "Examples of different kinds in one file, or in the training and validation sets.",
    ),
    "unknown_field": (
        "warning",
        "An unknown key holding nothing (null, empty), of an example, a message, a tool call or "
        "its function: it is dropped.",
    ),
    "unexpected_field": (
        "error",
        "An unknown key holding a value, of an example, a message, a tool call or its "
        "function: fit() would refuse it.",
    ),
    "invalid_text": ("error", "Text holds a lone surrogate, which cannot be written as UTF-8."),
    "missing_messages": (
        "error",
        "'messages' is missing, not a list (nor the JSON text of one, as a CSV cell or a "
        "string column holds it), or empty.",
    ),
    "message_not_object": ("error", "A message is not a JSON object."),
    "unknown_role": ("error", "A role other than system, user, assistant or tool."),
    "missing_content": ("error", "A message without content (or tool calls, for assistants)."),
    "invalid_content": (
        "error",
        'Content is not a string or a list of parts, or a part has no "type" (a text part, no '
        'string "text").',
    ),
    "empty_content": (
        "warning",
        "A message's content, a prompt, a completion or a pair's answer is empty or whitespace.",
    ),
    "missing_assistant": ("error", "No assistant message to learn from."),
    "assistant_not_last": ("error", "The last message is not the assistant's, and no weights."),
    "no_trainable_turns": ("error", "Every assistant turn has weight 0: nothing to train on."),
    "invalid_weight": ("error", "weight must be 0 or 1."),
    "weight_not_on_assistant": ("error", "weight is only allowed on assistant messages."),
    "invalid_name": ("error", "A message's name (its speaker's) is not text."),
    "misplaced_field": (
        "error",
        "tool_calls on a message that is not the assistant's, or a tool_call_id on one that is "
        "not a tool result.",
    ),
    "invalid_tool_call": (
        "error",
        "A tool call lacks an id, function name or arguments, or has a type other than function.",
    ),
    "tool_arguments_not_json": (
        "error",
        "Tool call arguments are not a JSON object: as its text or as the object itself "
        "(either is read); the message says what they are (`the text of an array`, `a string "
        "that is not JSON`).",
    ),
    "undefined_tool": (
        "warning",
        "A tool call names a function that the row's `tools` do not define (with the closest "
        "one): the model would learn to call a function that is not there.",
    ),
    "tool_arguments_off_schema": (
        "warning",
        "A tool call's arguments break its function's parameters, at their top level: a "
        "required argument missing, one the function does not take (where "
        "`additionalProperties` is false), a value of another type or outside its `enum`: the "
        "model would learn to call the function wrongly.",
    ),
    "tool_call_without_result": ("error", "A tool call is never answered by a tool message."),
    "tool_result_without_call": ("error", "A tool message answers no earlier tool call."),
    "invalid_tools": (
        "error",
        "'tools' is not a list of function definitions (type function, a name, parameters "
        "an object), nor the JSON text of one.",
    ),
    "invalid_image": (
        "error",
        "An image the provider would refuse: in a message that is not the user's, an "
        "image_url part without its url, a link where the provider takes base64 data URLs "
        "only (Together, Fireworks), or an image type it does not take.",
    ),
    "model_without_images": (
        "warning",
        "Messages show images, and the model is one the model table does not mark as trained "
        "on images (OpenAI: gpt-4o-2024-08-06): the provider may refuse the file or the job.",
    ),
    "uncounted_image": (
        "warning",
        "A content part that is not text (an image), on a target that trains on it: left out of "
        "the token counts and the context check, though the provider bills it by its size.",
    ),
    "unsupported_content": (
        "error",
        "A content part that is not text (an image) that training would drop: the target "
        "trains on text only (hf, mistral).",
    ),
    "unsupported_tools": (
        "error",
        "Tool definitions, calls or results that training would drop: the model's chat "
        "template does not write them, or the target trains text turns only.",
    ),
    "invalid_reasoning": (
        "error",
        "An assistant turn's reasoning (reasoning_content, or reasoning) that is not text, is "
        "given under both names, or stands on another role's turn.",
    ),
    "unsupported_reasoning": (
        "error",
        "An assistant turn's reasoning that training would drop: the target trains none "
        "(openai, mistral), or the model's chat template does not write it.",
    ),
    "invalid_tool_call_id": ("error", "Mistral tool call ids are 9 letters or digits."),
    "invalid_preference": ("error", "A preference example lacks input, chosen or rejected."),
    "identical_pair": (
        "warning",
        "The chosen and the rejected answer are the same: the pair teaches DPO nothing.",
    ),
    "unsupported_kind": (
        "error",
        "This target cannot train on this kind of example; prompt/completion pairs where only "
        "chat trains are told the renames that make each a user turn and an assistant turn.",
    ),
    "invalid_completion": ("error", "prompt and completion must be strings."),
    "too_many_tokens": ("error", "The example is longer than the model's context limit."),
    "would_truncate": ("warning", "The example exceeds max_length and will be truncated."),
    "too_few_examples": (
        "error",
        "Fewer examples than the provider's minimum, a validation set with none, or none "
        "left with a trained token once truncated to max_length.",
    ),
    "file_too_large": ("error", "The file is larger than the provider accepts."),
    "template_error": ("error", "The model's chat template cannot render the example."),
    "mask_unstable": (
        "error",
        "The template renders a turn differently inside the whole conversation: its tokens "
        "cannot be found exactly.",
    ),
    "no_trainable_tokens": (
        "warning",
        "Truncation to max_length leaves no trained token: training skips the example (a "
        "preference pair whose prompt alone fills max_length: DPO drops it).",
    ),
    "no_end_of_turn": (
        "warning",
        "The chat template ends an assistant turn with no end-of-turn (special) token: the "
        "model never learns to stop, and its answers run on to max_new_tokens.",
    ),
    "special_token_in_text": ("warning", "Text spells one of the tokenizer's control tokens."),
    "unknown_model": (
        "warning",
        "The base model is not in the model table of a provider whose fine-tunable models it "
        "lists (OpenAI): a misspelling, or a model newer than the table.",
    ),
    "approximate_token_counts": ("warning", "No exact tokenizer: counts are estimates."),
    "unchecked_context": (
        "warning",
        "No context limit is known for the model: no example was checked against one.",
    ),
    "duplicate_example": (
        "warning",
        "The same example appears more than once (texts, images, tool calls and tools alike): "
        "`ds.deduplicated()` takes the repeats out (`--deduplicate` on the command line).",
    ),
    "near_duplicate_example": (
        "warning",
        "Examples whose texts are equal once lowercased with all whitespace removed.",
    ),
    "train_validation_leak": ("warning", "A validation example also appears in training."),
    "inconsistent_system_prompt": ("warning", "Several different system prompts are used."),
    "long_tail": ("warning", "A few examples are far longer than the rest."),
    "pii_email": ("warning", "Looks like an email address."),
    "pii_phone": ("warning", "Looks like a phone number."),
    "pii_card_number": ("warning", "Looks like a payment card number (Luhn-valid)."),
    "secret_api_key": ("warning", "Looks like an API key or token."),
}
