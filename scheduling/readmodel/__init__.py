"""The query side: PostgreSQL migrations, the projector, the patient cache, the SQL queries."""
