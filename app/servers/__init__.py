"""Servers pages."""
