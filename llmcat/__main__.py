"""``python -m llmcat`` is the ``llmcat`` command."""

from llmcat.cli.main import main

raise SystemExit(main())
