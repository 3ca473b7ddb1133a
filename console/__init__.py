"""The web console: alerts, targets, a metric explorer and the platform's health, in a browser."""
