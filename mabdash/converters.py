"""URL converters: database ids are 1–18 digits, so no path can overflow a 64-bit key."""


class DatabaseIdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class SlugConverter:
    """An experiment slug as the model allows it: a path with anything else matches no route.

    So a hostile path (``x%00``, 10,000 characters) is a 404 before any database or cache
    access, never a database error.
    """

    regex = "[a-z0-9][a-z0-9-]{0,62}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
