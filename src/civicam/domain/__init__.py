"""Pure types and decisions: no I/O anywhere in this package."""
