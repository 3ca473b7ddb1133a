"""kemi-stats alerting service."""
