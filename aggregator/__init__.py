"""kemi-stats aggregator service."""
