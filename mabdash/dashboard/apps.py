from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "mabdash.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
