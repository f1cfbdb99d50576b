"""WSGI entry point: `gunicorn -k gthread wsgi:app` or any WSGI server (castor run: app.server)."""

from app import create_app

app = create_app()
