-- tests/bench/sql/single.sql - strategy `single`: the one statement backfilld replaces. It locks
-- every row it updates until it commits, so the application's UPDATEs queue behind it.
UPDATE items SET new_col = upper(old_col) WHERE new_col IS NULL;
