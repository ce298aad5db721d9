"""Resources to rows and back: the mapping, the statements, bulk writes, erasure."""
