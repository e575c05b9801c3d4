-- What a sync cost: the DynamoDB read and write units its latest run consumed storing the
-- products (README.md, "Cost"). Re-runnable.
ALTER TABLE sync_logs
    ADD COLUMN IF NOT EXISTS read_units double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS write_units double precision NOT NULL DEFAULT 0;
