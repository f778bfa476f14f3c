"""The page caches: the copies each process keeps so that a page costs a join, and what
makes each one stale.

Between store and live, knowing topics and ids, never products: live tells it every
change it hears of (`changes`); the apps that own the pages keep their copies here
(`cache`), each saying what it was made of (`Depends`), and one rule (`cache`) decides
when a copy is stale. Only with `LIVE_GRID_CACHE` on (`make serve`), outside a
transaction, and while the process hears every change (`cache.caching`).

What is kept, and what makes it stale besides a change of unknown ids (the channel lost
some) and `cache.MAX_AGE_SECONDS`. Topics: `cards` (a product's card), `listing` (what
listings hold, and their order), `carts`, `sessions` and `users`.

- each card (`store.live.cards`), for the stream and the pages: its id under `cards`,
  its next reservation's end (`cache.fragments`);
- a listing's ids (`store.views.product_grid`): `listing`;
- the category links: a minute;
- a grid page, split at the visitor's slots: its cards, `listing`, a minute;
- a product page: its card, its next reservation's end, a minute;
- a cart page (`cart.views.cart_detail`): its cart, its products' cards, their next
  reservation's end, 30 s;
- the stream's grid order (`store.live`): `listing`; every card, for a stream's reset:
  any card, the next reservation's end;
  (all of these in `cache.pages`)
- a visitor's header (`store.visitors.memo`): their session, cart and user, 30 s, the
  session's end.
"""
