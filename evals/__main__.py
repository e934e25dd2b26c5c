"""``python -m evals``: the same harness as ``python -m llmcat.evals``."""

import sys

from llmcat.evals.commands import main

sys.exit(main())
