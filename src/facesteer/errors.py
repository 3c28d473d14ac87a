"""The one exception type for mistakes a user can fix (bad input, missing file, wrong shape).

The CLI prints a ``FacesteerError`` as a single line and exits with status 2; any other exception is a bug
and keeps its traceback.
"""


class FacesteerError(Exception):
    """A problem with the user's input or environment, stated so that the user can fix it."""
