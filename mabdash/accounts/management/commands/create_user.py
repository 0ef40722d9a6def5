"""Create a dashboard user with a role: ``manage.py create_user NAME --role operator``."""

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mabdash.accounts.roles import USER_ROLES
from mabdash.accounts.services import user_create
from mabdash.errors import ServiceError


class Command(BaseCommand):
    help = "Create a dashboard user holding one role (viewer, operator, approver) or admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=[*USER_ROLES, "admin"], required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-env", metavar="VAR", help="read the password from this environment variable (else prompt)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["password_env"]:
            password = os.environ.get(options["password_env"])
            if not password:
                raise CommandError(f"--password-env: environment variable {options['password_env']} is empty")
        else:
            password = getpass.getpass("Password: ")
        try:
            user = user_create(
                username=options["username"], password=password, role=options["role"], email=options["email"]
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"created {options['role']} {user.username!r}")
