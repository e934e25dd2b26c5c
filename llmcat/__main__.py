"""``python -m llmcat`` is the ``llmcat`` command."""

from .cli import main

raise SystemExit(main())
