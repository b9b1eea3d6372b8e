// Take-away actions: print, e-mail (with consent), QR. No inline script (the CSP forbids it).
(function () {
  "use strict";

  const FINAL = new Set(["printed", "sent", "failed", "interrupted"]);
  const POLL_MS = 1000;
  const POLL_LIMIT = 120; // two minutes, then the shopper has long gone

  function init(root) {
    const skus = JSON.parse(root.dataset.skus || "[]");
    const texts = JSON.parse(root.dataset.texts || "{}");
    const lang = root.dataset.lang || undefined;
    const api = root.dataset.api;
    const status = root.querySelector(".takeaway-status");
    const form = root.querySelector(".takeaway-email");
    const qrPanel = root.querySelector(".takeaway-qr");

    function say(message, attention) {
      status.hidden = !message;
      status.textContent = message || "";
      status.classList.toggle("attention", Boolean(attention));
    }

    async function post(path, body) {
      const response = await fetch(api + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(Object.assign({ skus: skus, lang: lang }, body || {})),
        credentials: "same-origin",
      });
      let data = {};
      try { data = await response.json(); } catch (e) { data = {}; }
      return { ok: response.ok, status: response.status, data: data };
    }

    function describe(job) {
      if (job.type === "print") {
        if (job.state === "printed") return [texts.printed, false];
        if (job.state === "interrupted") return [texts.interrupted, true];
        if (job.state === "failed") return [texts.error, true];
        return job.attention ? [texts.attention, true] : [texts.queued_print, false];
      }
      if (job.state === "sent") return [texts.sent, false];
      if (job.state === "failed") return [texts.failed, true];
      return job.attempts > 0 ? [texts.waiting_email, false] : [texts.queued_email, false];
    }

    async function follow(url) {
      for (let i = 0; i < POLL_LIMIT; i += 1) {
        let job;
        try {
          const response = await fetch(url, { headers: { Accept: "application/json" } });
          if (!response.ok) return;
          job = await response.json();
        } catch (e) {
          return;
        }
        const [message, attention] = describe(job);
        say(message, attention);
        root.dataset.jobState = job.state;
        if (FINAL.has(job.state)) return;
        await new Promise(function (resolve) { setTimeout(resolve, POLL_MS); });
      }
    }

    async function doPrint(button) {
      button.disabled = true;
      say(texts.queued_print, false);
      try {
        const result = await post("/print");
        if (!result.ok) { say(result.data.error || texts.error, true); return; }
        await follow(result.data.status_url);
      } finally {
        button.disabled = false;
      }
    }

    async function doQr() {
      const result = await post("/qr");
      if (!result.ok) { say(result.data.error || texts.error, true); return; }
      const img = qrPanel.querySelector("img");
      img.src = result.data.image;
      img.alt = result.data.url;
      qrPanel.hidden = false;
    }

    if (form) {
      const input = form.querySelector("input[type=email]");
      const consent = form.querySelector("input[name=consent]");
      const submit = form.querySelector("button[type=submit]");
      const error = form.querySelector(".takeaway-error");
      const plausible = /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/;

      function refresh() {
        submit.disabled = !(consent.checked && plausible.test(input.value.trim()));
      }
      function reset() {
        input.value = "";
        consent.checked = false;
        error.hidden = true;
        form.hidden = true;
        refresh();
      }
      input.addEventListener("input", refresh);
      consent.addEventListener("change", refresh);
      form.querySelectorAll("[data-append]").forEach(function (b) {
        b.addEventListener("click", function () {
          const add = b.dataset.append;
          const value = input.value.trim();
          input.value = add.startsWith("@") ? value.split("@")[0] + add : value + add;
          input.focus();
          refresh();
        });
      });
      form.querySelector("[data-action=cancel]").addEventListener("click", reset);
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        submit.disabled = true;
        const result = await post("/email", { email: input.value, consent: consent.checked });
        if (!result.ok) {
          error.textContent = result.data.error || texts.error;
          error.hidden = false;
          refresh();
          return;
        }
        reset(); // the address leaves the page as soon as the kiosk has it
        say(texts.queued_email, false);
        await follow(result.data.status_url);
      });
    }

    root.querySelectorAll("[data-action]").forEach(function (button) {
      const action = button.dataset.action;
      if (action === "print") button.addEventListener("click", function () { doPrint(button); });
      if (action === "email") button.addEventListener("click", function () {
        qrPanel.hidden = true;
        form.hidden = false;
        form.querySelector("input[type=email]").focus();
      });
      if (action === "qr") button.addEventListener("click", function () {
        if (form) form.hidden = true;
        doQr();
      });
      if (action === "close") button.addEventListener("click", function () { qrPanel.hidden = true; });
    });
  }

  function start() {
    document.querySelectorAll("[data-takeaway]").forEach(function (root) {
      if (root.dataset.ready) return;
      root.dataset.ready = "1";
      init(root);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
