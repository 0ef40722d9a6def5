"""URL converters: database ids are 1–18 digits, so no path can overflow a 64-bit key."""


class DatabaseIdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
