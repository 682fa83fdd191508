"""Config text: the marker type for it, and how a message quotes it."""

QUOTED_CHARACTERS = 80


class UserText(str):
    """Text that came from a config: it may reach generated code only as a literal.

    The renderer refuses to print a ``UserText`` that did not go through its
    literal filter, in the built-in templates and in a team's own alike.
    """

    __slots__ = ()


def quoted(text: str) -> str:
    """``text`` as a message quotes it: ``'abc'``, or its start when it is long.

    A message is one line a person reads: a 100,000-character value is named by its
    first QUOTED_CHARACTERS characters and its length, not echoed whole.
    """
    if len(text) <= QUOTED_CHARACTERS:
        return repr(text)
    return f"{text[:QUOTED_CHARACTERS]!r}… ({len(text):,} characters)"
