"""kemi-stats calculator service."""
