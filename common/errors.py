"""The one exception type that reaches the user: a problem with what they asked for."""
from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for; reported as one line and a non-zero exit, no traceback."""
