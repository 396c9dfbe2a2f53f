"""The REST API under ``/api/v1``: rule sets, items and reports, described by OpenAPI."""
