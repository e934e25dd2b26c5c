"""Spreadsheet cells: text a spreadsheet would run as a formula is neutralised on the way out
and restored on the way back in (OWASP's "CSV injection")."""

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a string that starts like a formula gets a
    leading apostrophe (OWASP's neutralisation); other values are kept."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def formula_text(value: object) -> object:
    """The text ``spreadsheet_safe`` neutralised, as it was: a review file read back as examples
    gives the product's own title."""
    if isinstance(value, str) and value[:1] == "'" and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value
