"""The demo of ``kemi-stats up --demo``: simulated devices, a push agent, a webhook receiver, a live view."""
