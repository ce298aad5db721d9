"""Running a database: migrations, inspection, audit seals, observability, the demo."""
