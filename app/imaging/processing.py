"""Queue the schema processing job of an image (the one module here that touches the app)."""

from __future__ import annotations


def queue_schema_processing(image):
    """Mark the image's schema pending, then commit and enqueue `jobs.schema.process_schema`."""
    from app.jobs import enqueue  # imported late: the rest of app.imaging stays Flask-free

    image.schema_status = "pending"
    return enqueue("jobs.schema.process_schema", "schema", "image", image.id, image.id,
                   timeout=600)
