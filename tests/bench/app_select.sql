-- pgbench script: the application reads a random row by key. -D n=ROWS.
\set id random(1, :n)
SELECT id, old_col, new_col, filler FROM items WHERE id = :id;
