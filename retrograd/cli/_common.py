"""What the subcommands share: how they report an error or an interruption, in one line on
stderr, never a traceback."""

import sys

__all__ = ["EXPECTED", "USAGE_ERROR", "INTERRUPTED", "fail", "message"]

# The errors a subcommand reports in one line: an option or a file's content that does not fit
# (ValueError), and files or folders that are missing, unreadable or in the way (OSError).
# Anything else is a bug, and keeps its traceback.
EXPECTED = (ValueError, OSError)
USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C


def message(command, error):
    """The text of ``error`` for ``retrograd <command>: <text>``: an OSError from the system
    with the path it names, and without a leading "<command>: " that the prefix already says.

    Example:
        >>> message("train", ValueError("train: --epochs must be an int >= 1, got 0"))
        '--epochs must be an int >= 1, got 0'
        >>> message("train", PermissionError(13, "Permission denied", "runs/a"))
        "permission denied: 'runs/a'"
    """
    text = str(error)
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
        if error.filename is not None and repr(str(error.filename)) not in text:
            text = f"{text[:1].lower()}{text[1:]}: {str(error.filename)!r}"
    if text.startswith(f"{command}: "):
        text = text[len(command) + 2:]
    return text


def fail(command, error):
    """Print ``retrograd <command>: <error>`` on stderr; returns the usage-error exit code."""
    print(f"retrograd {command}: {message(command, error)}", file=sys.stderr)
    return USAGE_ERROR
