"""The local stack: the platform's servers and services as supervised processes on loopback."""
