"""The dashboard, Castor's home page: live tasks, multicast, storage, replication, activity."""

from app.dashboard.views import bp

__all__ = ["bp"]
