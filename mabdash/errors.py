"""Errors raised by services; the API turns them into 4xx JSON bodies naming the field."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: a request the service refuses, with an HTTP status for the API."""

    status_code = 400
    code = "invalid"

    def __init__(self, errors: dict[str, list[str]] | str) -> None:
        self.errors = errors if isinstance(errors, dict) else {"detail": [errors]}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in self.errors.items())


class InvalidInput(ServiceError):
    """The input is wrong; ``errors`` maps each field to what is wrong with it."""


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    """The request is valid but clashes with the current state (retry after reloading)."""

    status_code = 409
    code = "conflict"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class Unavailable(ServiceError):
    """A backing service is down; the client should retry."""

    status_code = 503
    code = "unavailable"
