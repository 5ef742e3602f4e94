"""Evaluation: predictors, metrics, statistics and the result table."""

from finetune._namespace import PublicNames, public_names
from finetune.evaluation import metrics
from finetune.evaluation._cache import PredictionCache
from finetune.evaluation._callable import CallablePredictor
from finetune.evaluation._judge import PairwiseOptions, ajudge_pairwise, judge_pairwise
from finetune.evaluation._local import HFPredictor
from finetune.evaluation._predictors import (
    MistralPredictor,
    OpenAIPredictor,
    Predictor,
    TruncatedReply,
    predictor_for,
)
from finetune.evaluation._result import EvalResult
from finetune.evaluation._run import EvaluateOptions, aevaluate, evaluate
from finetune.evaluation._stats import (
    Comparison,
    Interval,
    bootstrap_mean,
    compare_paired,
    holm,
    mean_interval,
    wilson_interval,
)
from finetune.evaluation._tools import format_tool_calls, read_tool_calls

__all__ = [
    "CallablePredictor",
    "Comparison",
    "EvalResult",
    "EvaluateOptions",
    "HFPredictor",
    "Interval",
    "MistralPredictor",
    "OpenAIPredictor",
    "PairwiseOptions",
    "PredictionCache",
    "Predictor",
    "TruncatedReply",
    "aevaluate",
    "ajudge_pairwise",
    "bootstrap_mean",
    "compare_paired",
    "evaluate",
    "format_tool_calls",
    "holm",
    "judge_pairwise",
    "mean_interval",
    "metrics",
    "predictor_for",
    "read_tool_calls",
    "wilson_interval",
]
__dir__: PublicNames = public_names(__name__)
