"""Reading: search compilation, cursors, the typed repositories."""
