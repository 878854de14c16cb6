-- tests/bench/sql/schema.sql - the bench table, generated once into the template database.
-- psql variable: rows. Run with psql -v ON_ERROR_STOP=1 (autocommit: VACUUM needs it).
-- old_col is lower-case text (upper() changes it), filler ~100 bytes, new_col empty: every row is
-- work for the backfill. The key is added after the load (faster than maintaining it row by row).
CREATE TABLE items (
    id bigint NOT NULL,
    old_col text NOT NULL,
    new_col text,
    filler text
);
INSERT INTO items (id, old_col, new_col, filler)
SELECT i,
       'item-' || i || '-' || md5(i::text),
       NULL,
       substr(repeat(md5('filler' || i), 4), 1, 100)
FROM generate_series(1, :rows) AS i;
ALTER TABLE items ADD PRIMARY KEY (id);
VACUUM ANALYZE items;
