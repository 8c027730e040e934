"""Durable SQL store (SQLAlchemy + Alembic) and the ephemeral key-value store."""
