"""Alembic migrations of the bot's tables (env.py, versions/). Applied by storage.db.migrate()."""
