"""llmcat's regression harness for classification and listing copy, shipped in the wheel:
``python -m llmcat.evals``, ``llmcat eval``, and in a checkout ``python -m evals``.

Modules: ``commands`` (the command line), ``suites`` (datasets), ``suite_runner`` (run a suite),
``stop_and_progress``, ``records`` (a run's files, typed), ``gate`` (the verdict), ``metrics``
(scoring and the metric registry), ``stats`` (paired tests), ``summary`` (summary.md),
``report`` and ``compare_report`` (the pages), ``explorer``, ``plots``, ``mapeval`` (mapping
suites), ``bench``, ``scaling``, ``calibrate``, ``fit``, ``curve``, ``degrade``, ``catalogue``,
``recheck``, ``vectors``, ``flipkart`` (the Flipkart CSV loader), ``paths`` (where data is found).
"""
