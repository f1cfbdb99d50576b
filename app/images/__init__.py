"""Images pages."""
