-- tests/bench/sql/keyset_loop.sql - strategy `keyset-loop`: the best hand-written loop. It walks
-- the primary key in ranges (lo, lo + batch] with a plain UPDATE (the index serves each range, no
-- row-lock WAL) and commits each range, with synchronous_commit as the bench sets it for this
-- session (off by default, as a careful operator would). Unlike SKIP LOCKED it waits for rows the
-- application holds, which is fine here: the application's transactions are short.
-- psql variables: batch (rows per range), sync (synchronous_commit for this session).
SELECT set_config('bench.batch', :'batch', false);
SELECT set_config('synchronous_commit', :'sync', false);
DO $bench$
DECLARE
    step bigint := current_setting('bench.batch')::bigint;
    lo bigint;
    top bigint;
BEGIN
    SELECT min(id) - 1, max(id) INTO lo, top FROM items;
    WHILE lo < top LOOP
        UPDATE items SET new_col = upper(old_col)
        WHERE id > lo AND id <= lo + step AND new_col IS NULL;
        COMMIT;
        lo := lo + step;
    END LOOP;
END
$bench$;
