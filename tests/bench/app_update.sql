-- pgbench script: the application writes a random row (its filler), conflicting with the
-- backfill's row locks. -D n=ROWS.
\set id random(1, :n)
UPDATE items SET filler = md5(random()::text) || substr(filler, 33) WHERE id = :id;
