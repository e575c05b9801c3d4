"""Speed and memory figures of the running stack (`make bench`, `python -m tests.bench`).

The machines are shared and noisy, so what matters are ratios measured in one run, and every
ratio compares like with like: the same requests, items and item counts on both sides. Every
figure is taken after a warm-up, at least three times, and shown as min / median / max; ratios
divide medians and stand next to their goals. Figures that depend on the DynamoDB server are
taken on moto and, where Node is installed, on dynalite (moto's Query scans the whole table,
so read figures on moto measure moto).

- `catalog`: GetProduct through Envoy, over gRPC and as its bare DynamoDB read; catalog and
  Envoy CPU per GetProduct; batch upserts first and unchanged; the store against raw
  BatchWriteItem of the items it wrote; write units per first-synced product; a profile.
- `auth`: PostgreSQL statements of a burst with a fresh token; reads during logins.
- `syncs`: syncs against their rate-limit floors, many at once, one replica against two, and
  the peak memory of fresh sync replicas for 1,000 and 50,000 products.

Results go to the console, `.bench/results.json` (and `--json PATH`) and `.bench/report.md`,
the tables BENCHMARKS.md is made from.
"""
