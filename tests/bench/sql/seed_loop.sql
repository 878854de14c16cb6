-- tests/bench/sql/seed_loop.sql - strategy `seed-loop`: the loop found in most blog posts and
-- answers. Each batch picks 1000 rows still to do with a locking subselect (FOR UPDATE SKIP
-- LOCKED), updates them and commits; no sleep; the session's defaults (synchronous_commit on).
-- psql variable: timeout_s, the bench's bound: past it the loop stops and the bench reports
-- "did not finish". When the subselect finds nothing it checks, without locking, whether rows are
-- left (held by the application at that moment) and retries shortly instead of ending early.
SELECT set_config('bench.timeout_s', :'timeout_s', false);
DO $bench$
DECLARE
    deadline timestamptz := clock_timestamp()
        + make_interval(secs => current_setting('bench.timeout_s')::double precision);
    n bigint;
BEGIN
    LOOP
        UPDATE items SET new_col = upper(old_col)
        WHERE id IN (SELECT id FROM items WHERE new_col IS NULL LIMIT 1000 FOR UPDATE SKIP LOCKED);
        GET DIAGNOSTICS n = ROW_COUNT;
        COMMIT;
        IF n = 0 THEN
            EXIT WHEN NOT EXISTS (SELECT 1 FROM items WHERE new_col IS NULL);
            PERFORM pg_sleep(0.01);
        END IF;
        IF clock_timestamp() > deadline THEN
            RAISE NOTICE 'bench: seed-loop stopped by its timeout';
            EXIT;
        END IF;
    END LOOP;
END
$bench$;
