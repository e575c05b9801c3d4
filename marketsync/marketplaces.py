"""The marketplaces the platform syncs, by the names the API and the stores use."""

AMAZON = "amazon"
WALMART = "walmart"
MARKETPLACES = (AMAZON, WALMART)
