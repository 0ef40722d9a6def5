"""mabdash-client: decisions and batched, idempotent rewards for model servers.

>>> from mabdash_client import Client
"""

from mabdash_client._async import AsyncClient
from mabdash_client._client import Client
from mabdash_client._sender import RewardSender
from mabdash_client._types import Decision, DeliveryReport, MabdashError, QueueFull, RewardOutcome

__all__ = [
    "AsyncClient",
    "Client",
    "Decision",
    "DeliveryReport",
    "MabdashError",
    "QueueFull",
    "RewardOutcome",
    "RewardSender",
]
__version__ = "0.1.0"
