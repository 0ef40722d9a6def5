from __future__ import annotations

import pytest

from mabdash.accounts.services import user_create


@pytest.fixture
def approver(db):
    return user_create(username="ana", password="pw-ana-123456", role="approver")


@pytest.fixture
def second_approver(db):
    return user_create(username="abe", password="pw-abe-123456", role="approver")
