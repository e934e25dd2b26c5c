"""llmcat's regression harness for classification and listing copy, shipped in the wheel:
``python -m llmcat.evals``, ``llmcat eval``, and in a checkout ``python -m evals``.

Modules: ``suites`` (datasets), ``runner`` (run a suite, the gate), ``metrics`` (scoring and the
metric registry), ``stats`` (paired tests), ``report`` (summary.md, report.html), ``bench``,
``calibrate``, ``flipkart`` (the Flipkart CSV loader), ``paths`` (where data is found).
"""
