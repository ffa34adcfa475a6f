"""Slash-command families; each module has its own Router, included by bot/app.py."""
