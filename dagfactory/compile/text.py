"""The marker type for text that came from a config."""


class UserText(str):
    """Text that came from a config: it may reach generated code only as a literal.

    The renderer refuses to print a ``UserText`` that did not go through its
    literal filter, in the built-in templates and in a team's own alike.
    """

    __slots__ = ()
