"""The production ASGI entry's historical name: `live.asgi` is where it lives now.

`granian --interface asgi amazin.live_asgi:application` keeps working.
"""

from live.asgi import application

__all__ = ["application"]
