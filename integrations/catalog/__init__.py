"""Articles, prices and stock between the shops and Hogia Smart, in all three flows.

- ``sync``: one catalogue sync of a customer (one at a time per customer, a claim on
  ``CatalogState``), in the directions its flow has.
- ``to_hogia``: flows 1 and 3, shop → Hogia Smart. Products changed in the shop
  (``modified_after`` with an overlap, plus products named by webhooks) become articles
  with the same number (SKU); a variable product's variations become one flat article
  each. Products without a SKU are listed for support, never guessed at.
- ``hogia_feed``: the Hogia Smart article feed (rowversion watermark), recorded per
  customer, newest ``rowVersion`` only.
- ``to_shop``: flows 2 and 3, Hogia Smart → shops: what the customer's switches allow
  (flow 2: products created and/or updated, names; flows 2 and 3: prices, campaign
  prices, stock), found by SKU also when the SKU is a variation's, written in batches.
- ``stock``: the stock rule both the periodic and the initial sync use.
- ``bindings``: the product behind each SKU in each shop, and what was written to it.
- ``initial_sync``: the first copy of a catalogue, previewed before it is written; the preview
  also lists what the periodic sync would change in the products both sides have.
- ``overwrite``: whether Hogia Smart may overwrite a shop's existing products; held for a new
  shop until support has accepted the initial sync's differences.
"""
