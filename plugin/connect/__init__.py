"""Atlassian Connect: the descriptor, signed installs, JWT on every request, the issue panel.

Connect is an adapter at the edge: Atlassian stopped new Connect installs in 2026, so the admin
webhook with an API token stays the main way in, and nothing outside this package needs Connect.
"""
