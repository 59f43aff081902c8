"""What Courier's commands share: exit codes and one-line errors (SPEC §13).

0 success, 1 the work failed, 2 bad arguments; the error is one line on
stderr (argparse would print its usage block first).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.lookup import NotFound, find_project, find_task

FAILED = 1
BAD_INPUT = 2


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


def failed(message: str) -> CommandError:
    return CommandError(message, returncode=FAILED)


def _one_line_error(parser: CommandParser, message: str) -> None:
    if parser.called_from_command_line:
        sys.stderr.write(f"CommandError: {message}\n")
        sys.exit(BAD_INPUT)
    raise bad_input(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"“{text}” is not a positive whole number")
    return value


class CourierCommand(BaseCommand):
    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = partial(_one_line_error, parser)
        return parser

    def task(self, name: str):
        try:
            return find_task(name)
        except NotFound as exc:
            raise bad_input(str(exc)) from None

    def project(self, name: str):
        try:
            return find_project(name)
        except NotFound as exc:
            raise bad_input(str(exc)) from None
