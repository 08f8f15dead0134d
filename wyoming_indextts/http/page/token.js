// The HTTP API's token on the page behind Home Assistant's ingress (token_admin.py): shown once
// to an administrator, and replaced on request. The section stays hidden wherever the server
// does not offer it (no --http-token-file, or a request that did not come through ingress).
"use strict";

(() => {
  const section = document.getElementById("token-admin");
  const reveal = document.getElementById("token-reveal");
  const value = document.getElementById("token-value");
  const post = (path) =>
    fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"confirm": true}' });

  async function show(response) {
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      value.textContent = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
      return;
    }
    value.textContent = body.token;
    reveal.disabled = true;
  }

  async function init() {
    const response = await fetch("v1/admin/token");
    if (!response.ok) return;
    const state = await response.json();
    reveal.disabled = state.shown;
    section.hidden = false;
    reveal.addEventListener("click", async () => show(await post("v1/admin/token/reveal")));
    document.getElementById("token-rotate").addEventListener("click", async () => {
      if (confirm("Make a new token? Clients using the old one stop working.")) {
        show(await post("v1/admin/token/rotate"));
      }
    });
  }

  init();
})();
