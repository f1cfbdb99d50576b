"""One receive-and-commit engine for uploads and incoming replication.

An incoming copy is an area with `parts/` (files being received), `tree/` (files received
and verified) and a state file. Files stream into `parts/` straight from the request body,
hashed on the way (whole file and per chunk); a finished file moves into `tree/`; the
manifest is checked and written last, and `tree/` is swapped in as the image folder through
a journal that startup recovery finishes or rolls back.
"""
