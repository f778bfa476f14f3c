"""Live updates: a transport that pushes server-rendered fragments to open pages.

It knows nothing of what the fragments show. The app that owns the pages registers how a
fragment renders (`live.registry`) and publishes the ids that changed after commit
(`live.broker.publish_on_commit`); live carries the ids between processes (`live.channel`),
renders each change once and fans the same bytes out to every open `/live/` stream
(`live.broker`, `live.sse`, `live.views`). `live.asgi` is the production entry point.
"""
