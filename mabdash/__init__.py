"""mabdash: decide which ML model serves production traffic, with multi-armed bandits."""

from mabdash.celery import app as celery_app

__all__ = ["celery_app"]
