"""Alembic migrations of the store schema (``forescale.store.metadata``)."""
