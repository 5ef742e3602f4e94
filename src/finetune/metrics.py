"""``finetune.metrics``, the ready-made metrics: the module ``ft.metrics`` names, so that
``from finetune.metrics import exact_match`` works as ``ft.metrics.exact_match`` does.

It is ``finetune.evaluation.metrics`` itself, not a copy: importing this module gives that
one."""

import sys

from finetune.evaluation import metrics as _metrics
from finetune.evaluation.metrics import *  # noqa: F403  (what type checkers read here)
from finetune.evaluation.metrics import __all__ as __all__

sys.modules[__name__] = _metrics
