// Live stock and catalog: listens to /live/ (Server-Sent Events) and swaps in the card
// fragments the server rendered once for everyone (store/includes/_product_card.html).
// The grid replaces, inserts, removes and reorders cards; a product page takes the card's
// stock, button state, name, price and image (and keeps its own quantity picker).
// Without JavaScript the page works as rendered.
(() => {
  "use strict";
  const root = document.querySelector("[data-live-src]");
  if (!root || !window.EventSource) return;
  const grid = root.id === "product-grid" ? root : null;

  // Shared fragments carry no CSRF token: take this page's (the one htmx sends).
  let token = "";
  try {
    token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  } catch (e) {
    token = "";
  }

  const fragment = (html) => {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const el = template.content.firstElementChild;
    el.querySelectorAll("form[method=post]").forEach((form) => {
      let input = form.querySelector("input[name=csrfmiddlewaretoken]");
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "csrfmiddlewaretoken";
        form.prepend(input);
      }
      input.value = token;
    });
    return el;
  };

  const activate = (el) => {
    if (window.htmx) window.htmx.process(el);
  };

  // New products are inserted only where the page shows the whole catalog (no search,
  // category, other sort or other page: data-live-insert); elsewhere the cards shown are
  // kept current and removed when gone, and new ones appear on the next load.
  const inserts = grid && grid.hasAttribute("data-live-insert");

  const updateGrid = (data, reset) => {
    const html = data.html || {};
    for (const [id, markup] of Object.entries(html)) {
      const old = document.getElementById(`product-${id}`);
      if (!old && !inserts) continue;
      const el = fragment(markup);
      if (old) old.replaceWith(el);
      else grid.appendChild(el);
      activate(el);
    }
    const keep = new Set((data.order || []).map(String));
    const gone = reset && data.order
      ? [...grid.children].filter((el) => !keep.has(el.dataset.product))
      : (data.removed || []).map((id) => document.getElementById(`product-${id}`));
    gone.forEach((el) => el && el.remove());
    if (data.order && inserts) {
      // Grid order is the server's (name, id); moving nodes only where they differ.
      let previous = null;
      for (const id of data.order) {
        const el = document.getElementById(`product-${id}`);
        if (!el) continue;
        const expected = previous ? previous.nextElementSibling : grid.firstElementChild;
        if (el !== expected) grid.insertBefore(el, expected);
        previous = el;
      }
    }
    const empty = document.querySelector("[data-testid=empty-catalog]");
    grid.classList.toggle("hidden", grid.children.length === 0);
    if (empty) empty.classList.toggle("hidden", grid.children.length > 0);
  };

  const updateDetail = (data, reset) => {
    const id = root.dataset.product;
    const markup = (data.html || {})[id];
    const removed = reset ? !markup : (data.removed || []).map(String).includes(id);
    if (markup) {
      const card = fragment(markup);
      const freshStock = card.querySelector(".stock");
      const oldStock = root.querySelector(".stock");
      if (freshStock && oldStock) oldStock.replaceWith(freshStock);
      // The page's own form stays (its quantity picker and message); the card's button
      // says whether it can still be bought, and how many at most.
      const freshButton = card.querySelector("[data-testid=add-to-cart]");
      const oldButton = root.querySelector("[data-testid=add-to-cart]");
      if (freshButton && oldButton) {
        oldButton.disabled = freshButton.disabled;
        oldButton.textContent = freshButton.textContent;
      }
      const quantity = root.querySelector("[data-testid=quantity]");
      if (quantity && freshStock) {
        const available = Number(freshStock.dataset.available) || 0;
        quantity.disabled = available === 0;
        quantity.max = String(Math.max(1, Math.min(available, 99)));
      }
      for (const name of ["name", "price"]) {
        const fresh = card.querySelector(`[data-field=${name}]`);
        const old = root.querySelector(`[data-field=${name}]`);
        if (fresh && old) old.textContent = fresh.textContent;
      }
      const img = card.querySelector("[data-field=image]");
      const oldImg = root.querySelector("[data-field=image]");
      if (img && oldImg && oldImg.getAttribute("src") !== img.getAttribute("src")) {
        oldImg.setAttribute("src", img.getAttribute("src"));
      }
    } else if (removed) {
      const stock = root.querySelector(".stock");
      if (stock) {
        stock.textContent = "No longer available";
        stock.dataset.available = "0";
      }
      root.querySelectorAll(".add-form button, .add-form input").forEach((control) => {
        control.disabled = true;
      });
    }
  };

  const apply = grid ? updateGrid : updateDetail;
  const url = new URL(root.dataset.liveSrc, window.location.href);
  if (root.dataset.liveLast) url.searchParams.set("last", root.dataset.liveLast);
  // What this page shows: a reset then sends those cards only, whatever the catalog's size.
  const shown = grid
    ? [...grid.children].map((el) => el.dataset.product).slice(0, 200)
    : [root.dataset.product];
  if (!inserts) url.searchParams.set("ids", shown.join(","));
  const source = new EventSource(url);
  // For people and tests alike: is this page live right now?
  source.addEventListener("open", () => root.setAttribute("data-live-state", "open"));
  source.addEventListener("error", () => root.setAttribute("data-live-state", "reconnecting"));
  source.addEventListener("cards", (event) => apply(JSON.parse(event.data), false));
  source.addEventListener("reset", (event) => apply(JSON.parse(event.data), true));
})();
