"""The one exception type for bad user input.

Anything raised as `UserError` is printed by the CLI as a single line and exits non-zero;
every other exception is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: a config, a path, a file's contents. The message is one line."""
