"""Run by every Python process the tests start (conftest puts this folder on PYTHONPATH): it
sets finetune's clock to the tests' day, as the ``_one_day`` fixture does in the tests' own
process, so that a fit on OpenAI in a child process does not fail once 2027-01-06 has come."""

import datetime
import os

_DAY = os.environ.get("FINETUNE_TESTS_TODAY")
if _DAY:
    try:
        from finetune import lifecycle
    except ImportError:  # a process that runs without finetune on its path
        pass
    else:
        lifecycle.today = lambda: datetime.date.fromisoformat(_DAY)
