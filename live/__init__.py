"""Live updates: a transport that pushes server-rendered fragments to open pages.

It knows nothing of what the fragments show, and keeps no copy of them. The app that owns
the pages registers how a fragment renders (`live.registry`) and publishes the ids that
changed after commit (`live.publish`); live carries the ids between processes
(`live.channel`), tells every listener (the page caches: `pagecache`), renders each change
once and fans the same bytes out to every open `/live/` stream (`live.broker`, `live.sse`,
`live.views`), and lets a reconnecting viewer catch up. `live.asgi` is the production entry
point.
"""
