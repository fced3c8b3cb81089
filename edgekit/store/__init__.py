"""store: the results store — one interface (`base.ResultsStore`: schema, migrations, queries),
a SQLite back end (`sqlite`), a PostgreSQL back end (`postgres`), opening a store by location
(`open`, `location`) and loading the results a reference names (`references`).

May import: `edgekit.core` and the database drivers (sqlite3, psycopg).
"""
