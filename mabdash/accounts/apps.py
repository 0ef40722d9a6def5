from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mabdash.accounts"
    label = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from mabdash.accounts import schema  # noqa: F401  (registers the OpenAPI extension)
