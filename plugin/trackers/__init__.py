"""Clients that write leanguard's cards, labels and status back to Jira and Linear."""
