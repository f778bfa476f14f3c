"""HTML: the hosted Checkout page (checkout.py) and the small dashboard (dashboard.py).

Plain server-rendered forms with inline CSS, no external assets; the only
script (the Checkout page's live total) is an enhancement: without it the page
still never charges another total than it showed. Every value that comes from
state or from a form goes through ``esc`` (html.escape) before it reaches the
page.
"""

from __future__ import annotations

import html

esc = html.escape

CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,
sans-serif;color:#1a1f36;background:#f6f9fc}
a{color:#5851ea}
.wrap{max-width:920px;margin:40px auto;padding:0 16px}
.card{background:#fff;border-radius:12px;box-shadow:0 2px 5px rgba(50,50,93,.1),
0 1px 1px rgba(0,0,0,.07);padding:28px}
.checkout{display:grid;grid-template-columns:1fr 1fr;gap:40px}
@media (max-width:720px){.checkout{grid-template-columns:1fr}}
.badge{display:inline-block;background:#ffde92;color:#6b4b00;font-size:11px;font-weight:600;
text-transform:uppercase;letter-spacing:.04em;border-radius:4px;padding:1px 6px;margin-left:8px}
.muted{color:#697386}
.total{font-size:34px;font-weight:600;margin:4px 0 24px}
.item{display:flex;gap:12px;align-items:center;padding:10px 0;border-bottom:1px solid #e3e8ee}
.item img{width:44px;height:44px;object-fit:cover;border-radius:6px;border:1px solid #e3e8ee}
.item .name{flex:1}
.item .line{font-weight:600;white-space:nowrap}
.sum{display:flex;justify-content:space-between;padding:12px 0;font-weight:600}
label{display:block;font-size:13px;font-weight:500;color:#3c4257;margin:14px 0 4px}
input,select,textarea{width:100%;font:inherit;padding:9px 11px;border:1px solid #d5dbe1;
border-radius:6px;background:#fff}
input:focus{outline:2px solid #a29bfe;border-color:#635bff}
fieldset{border:0;padding:0;margin:14px 0 0}
legend{font-size:13px;font-weight:500;color:#3c4257;padding:0}
label.choice{display:inline-flex;align-items:center;gap:6px;margin:6px 16px 0 0;font-size:14px}
label.choice input{width:auto}
.row{display:grid;grid-template-columns:1fr 1fr;gap:12px}
button{font:inherit;font-weight:600;border:0;border-radius:6px;padding:11px 16px;cursor:pointer;
background:#635bff;color:#fff}
button.wide{width:100%;margin-top:20px;font-size:16px}
button.plain{background:#fff;color:#3c4257;border:1px solid #d5dbe1;padding:5px 10px}
.error{background:#fff0f0;color:#b3093c;border:1px solid #fbb;border-radius:6px;padding:10px;
margin-top:14px}
.ok{background:#effaf3;color:#0e6245;border:1px solid #b7e4c7;border-radius:6px;padding:10px}
.hint{font-size:12px;color:#697386;margin-top:14px}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:8px 6px;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#697386;font-weight:600}
.pill{font-size:12px;border-radius:10px;padding:1px 8px;background:#e3e8ee;color:#1a1f36}
.pill.delivered,.pill.active{background:#d7f7c2;color:#05690d}
.pill.failed{background:#ffe7f2;color:#b3093c}
.pill.pending{background:#fcedb9;color:#a82c00}
details pre{white-space:pre-wrap;font-size:12px;background:#f6f9fc;padding:8px;border-radius:6px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px}
form.inline{display:inline}
"""


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main class='wrap'>{body}</main></body></html>"
    )


def fill_session_id(url: str | None, session_id: str) -> str | None:
    """Stripe substitutes this literal placeholder in success and cancel URLs."""
    return url.replace("{CHECKOUT_SESSION_ID}", session_id) if url else None
