"""Image schemas and partition planning: pure Python, no Flask (docs/planning.md)."""
