"""``python -m llmcat.evals``: the harness from an installed llmcat."""

import sys

from llmcat.evals.commands import main

sys.exit(main())
