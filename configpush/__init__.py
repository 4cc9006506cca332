"""Configuration pushed to relays: SSH targets, allowed commands, metrics interval, credentials.

Pushes and their payload rules (``models``, ``payloads``), the relay routes that
hand them out and take acknowledgements (``relay_views``), re-sending unacknowledged
ones (``tasks``), the operator API and admin pages.
"""
