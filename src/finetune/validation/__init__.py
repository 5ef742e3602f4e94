"""Validation before any money is spent: rules per target, exact token counts, cost estimates."""

from finetune._namespace import PublicNames, public_names
from finetune.validation._catalog import catalog, default_epochs, model_info
from finetune.validation._codes import RULES
from finetune.validation._engine import validate
from finetune.validation._estimate import estimate
from finetune.validation._report import Finding, ValidationReport
from finetune.validation._rules import Issue, Target, register_rules, target_rules
from finetune.validation._tokens import (
    ApproximateCounter,
    ChatTemplateCounter,
    MistralCounter,
    TiktokenCounter,
    TokenCounter,
    counter_for,
)

__all__ = [
    "RULES",
    "ApproximateCounter",
    "ChatTemplateCounter",
    "Finding",
    "Issue",
    "MistralCounter",
    "Target",
    "TiktokenCounter",
    "TokenCounter",
    "ValidationReport",
    "catalog",
    "counter_for",
    "default_epochs",
    "estimate",
    "model_info",
    "register_rules",
    "target_rules",
    "validate",
]
__dir__: PublicNames = public_names(__name__)
