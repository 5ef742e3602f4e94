"""``python -m finetune``: the ``finetune`` command, where its script is not on the PATH."""

import sys

from finetune.cli import main

sys.exit(main())
