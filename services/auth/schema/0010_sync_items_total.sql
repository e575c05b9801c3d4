-- How many items the marketplace says the seller's catalogue holds, as a sync's latest run
-- learned it (Walmart's totalItems, the rows of Amazon's listings report): how far items_fetched
-- has to go. NULL until the marketplace has said. Re-runnable.
ALTER TABLE sync_logs
    ADD COLUMN IF NOT EXISTS items_total integer CHECK (items_total >= 0);
