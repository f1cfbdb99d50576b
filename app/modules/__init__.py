"""Modules pages."""
