"""Running items: one product, a stream or a list, each to a result or an error record, never
lost (``runner``); progress on long work."""
