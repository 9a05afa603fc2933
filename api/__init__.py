"""Internal HTTP API (FastAPI): routes, roles, problem+json errors."""
