"""Files in and out: reading products (``inputs``, ``columns``, ``specifications``, ``tables``),
writing results crash-safe and resumable (``output``), and the review loop (``review``)."""
