"""Benchmarks of hacs against raw asyncpg doing the same SQL work in the same run (`make bench`)."""
