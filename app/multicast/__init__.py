"""Multicast pages."""
