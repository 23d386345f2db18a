"""The HTTP surface: REST API (FastAPI, OpenAPI at /docs), the supervisor
dashboard, Server-Sent Events and Prometheus metrics."""

from dialer.api.app import create_app

__all__ = ["create_app"]
