// Forms marked data-submit-once send once: a second click (or Enter) while the first request
// is on its way does nothing. The server copes with doubles anyway (one session per cart);
// this spares the shopper a second wait. Coming back with the browser's Back button
// (bfcache) enables the button again.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-submit-once")) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
    button.setAttribute("aria-disabled", "true");
    if (button.dataset.sending) button.textContent = button.dataset.sending;
  }
});
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-submit-once]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("[aria-disabled=true]")) {
      button.removeAttribute("aria-disabled");
    }
  }
});
