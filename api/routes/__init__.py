"""Routers, one per resource, each with its prefix and OpenAPI tag."""
