"""manage.py migrate: create the visits table (run by the post-staging hook)."""
import sqlite3
import sys

import app

if __name__ == "__main__":
    if sys.argv[1:] != ["migrate"]:
        sys.exit("usage: manage.py migrate")
    with sqlite3.connect(app.db_path()) as db:
        db.execute("CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY)" % app.table())
    print("migrated %s" % app.db_path())
