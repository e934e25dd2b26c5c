"""``python -m llmcat.evals``: the harness from an installed llmcat."""

import sys

from .cli import main

sys.exit(main())
