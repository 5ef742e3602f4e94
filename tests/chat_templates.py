"""Chat templates of five model families, written after their published formats, on small
offline-trained tokenizers (no model hub): ChatML (Qwen, SmolLM), Llama 3, Mistral instruct,
Gemma and Phi-3. None has ``{% generation %}`` markers, like the real ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>'"
    " + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
    "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set head = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set head = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}{% if m['role'] == 'user' %}"
    "{{ '[INST] ' + (head if loop.first else '') + m['content'] + ' [/INST]' }}"
    "{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + m['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
PHI3 = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}"
    "{{ eos_token }}{% endif %}"
)


# ChatML that writes tools as Qwen 2.5 does: the definitions in a system turn, each call as
# <tool_call>{json}</tool_call> in the assistant turn, a result in <tool_response> in a user turn
CHATML_TOOLS = (
    "{% if tools %}{{ '<|im_start|>system\\nTools:' }}{% for t in tools %}{{ '\\n' + "
    "(t | tojson) }}{% endfor %}{{ '<|im_end|>\\n' }}{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'tool' %}"
    "{{ '<|im_start|>user\\n<tool_response>' + m['content'] + '</tool_response><|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}"
    "{% for c in m.get('tool_calls', []) %}{{ '<tool_call>{\"name\": \"' + c['function']['name'] "
    "+ '\", \"arguments\": ' + (c['function']['arguments'] | tojson) + '}</tool_call>' }}"
    "{% endfor %}{{ '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


# ChatML with a think block, as Qwen 3 writes reasoning: an assistant turn after the last
# user turn shows its reasoning_content in <think>...</think> before its content; one before it
# shows its content alone (a model's earlier reasoning is not in its context)
CHATML_THINK = (
    "{% set ns = namespace(last_user=-1) %}{% for m in messages %}"
    "{% if m['role'] == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{% if m['role'] == 'assistant' and loop.index0 > ns.last_user %}"
    "{{ '<think>\\n' + (m.get('reasoning_content') or '') + '\\n</think>\\n\\n' }}{% endif %}"
    "{{ m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """A template, its control tokens, and the token that ends an assistant turn."""

    name: str
    template: str
    specials: tuple[str, ...]
    bos: str | None
    eos: str
    end_of_turn: str
    system: bool = True


FAMILIES = [
    Family(
        "chatml",
        CHATML,
        ("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
        None,
        "<|im_end|>",
        "<|im_end|>",
    ),
    Family(
        "llama-3",
        LLAMA3,
        ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|eot_id|>",
    ),
    Family(
        "mistral-instruct", MISTRAL, ("<s>", "</s>", "[INST]", "[/INST]"), "<s>", "</s>", "</s>"
    ),
    Family(
        "gemma",
        GEMMA,
        ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
        "<bos>",
        "<eos>",
        "<end_of_turn>",
        system=False,
    ),
    Family(
        "phi-3",
        PHI3,
        ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"),
        None,
        "<|endoftext|>",
        "<|end|>",
    ),
]

CORPUS = [
    "Where is my order? It ships tomorrow. Thanks for waiting, we are sorry for the delay.",
    "Hello Ana! Order 427: your refund is on its way. Can you help me with the invoice?",
    "The parcel arrived damaged; we are sending a replacement today. Café, naïve, 東京, ok.",
    "You are a helpful support agent. Reply briefly and politely, in the house format.",
]


def family_tokenizer(family: Family) -> Any:
    """A byte-level BPE tokenizer trained on a small corpus, with the family's template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(family.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=family.eos, bos_token=family.bos, pad_token=family.eos
    )
    tokenizer.chat_template = family.template
    return tokenizer
