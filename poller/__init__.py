"""kemi-stats poller service."""
