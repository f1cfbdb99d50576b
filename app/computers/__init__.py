"""Computers pages."""
