"""A small local stand-in for the parts of Stripe's API that Amazin uses.

Run it with ``python -m stripe_emulator``; see README.md in this package.
Standard library only, so it never adds a dependency to the project.
"""

# The account's default API version: what a request that pins none is answered in, and
# what events are rendered in (as a webhook endpoint's version is the account's).
API_VERSION = "2026-10-28.endive"
