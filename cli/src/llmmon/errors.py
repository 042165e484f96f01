"""How the command line reports what went wrong: one line on stderr that says what is wrong and
what to do, and an exit status (2: the command was used wrongly; 1: it failed). A traceback is
printed only with ``--debug``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

USAGE, FAILURE = 2, 1


class CliError(Exception):
    """A failure the user can act on (exit status 1)."""

    status = FAILURE


class UsageError(CliError):
    """The command was used wrongly: a bad argument, a bad value (exit status 2)."""

    status = USAGE


def describe(exc: BaseException) -> str:
    """One line for an exception that escaped a command (library and OS errors included)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION (or run against the local stack)"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure a profile (aws configure) or set AWS_PROFILE"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url", "the endpoint")
        return f"cannot reach {endpoint}: check the address, or that the server is running"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "a call")
        return f"AWS refused {operation}: {error.get('Code', '?')}: {error.get('Message', '')}"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file or folder"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename}: is a folder; give a file"
    if isinstance(exc, NotADirectoryError):
        return f"{exc.filename}: is not a folder"
    if isinstance(exc, PermissionError):
        return f"{exc.filename or exc}: permission denied"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected {type(exc).__name__}{': ' + text if text else ''} (run with --debug)"


def existing_path(text: str) -> Path:
    """An argparse type: a file or folder that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def existing_folder(text: str) -> Path:
    path = existing_path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file; give a folder")
    return path


def readable_file(text: str) -> Path:
    """A file that exists, is not a folder, and is not empty."""
    path = existing_path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file")
    if path.stat().st_size == 0:
        raise argparse.ArgumentTypeError(f"{text}: is empty")
    return path


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole ' if kind is int else ''}number"
            ) from None
        if not value > 0 or value != value:
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    parse.__name__ = kind.__name__
    return parse
