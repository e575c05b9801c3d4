"""An Amazon seller's whole catalogue, through SP-API (python-amazon-sp-api), from asyncio.

The listings report (GET_MERCHANT_LISTINGS_ALL_DATA) is the complete catalogue in one gzip
TSV. It is downloaded to a temporary file, then read in pages: each page is enriched with brand,
category and main image from Catalog Items, 20 ASINs a call, and its FBA listings get their
stock from FBA inventory, so a sync holds one page at a time, never the catalogue.

Each operation has a rate limit of its own, so the phases overlap: FBA inventory is read from
the start, while the report is made and pages are enriched; only a page with FBA listings waits
for it. sp_api blocks, so each of its calls runs in a worker thread; every wait (pacing,
backoff, report polling) is awaited on the event loop.

One module a job: `client` (`AmazonCatalog`, which ties the others together), `tokens` (Login
with Amazon access tokens), `calls` (one SP-API request), `errors` (what its failures become),
`reports` (the report's lifecycle), `tsv` (reading the report), `mapping` (rows to products),
`inventory` (FBA stock) and `enrichment` (Catalog Items).
"""
