/* Kiosk screen behaviour: live events (welcome, product scanned, session cleared), activity
 * pings that postpone the idle reset, and a client-side idle fallback. Plain JS, no build. */
(function () {
  "use strict";

  var body = document.body;
  var csrf = body.dataset.csrf || "";
  var home = body.dataset.home || "/";
  var idleMs = (parseInt(body.dataset.idleTimeout, 10) || 90) * 1000;
  var PING_EVERY_MS = 5000;
  var lastActivity = Date.now();
  var lastPing = 0;

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(data || {})
    });
  }

  function activity() {
    lastActivity = Date.now();
    if (lastActivity - lastPing > PING_EVERY_MS) {
      lastPing = lastActivity;
      post("/api/session/activity").catch(function () { /* offline: the idle timer decides */ });
    }
  }
  ["pointerdown", "keydown", "input", "wheel", "touchstart"].forEach(function (type) {
    document.addEventListener(type, activity, { passive: true, capture: true });
  });

  function goHome() {
    try { sessionStorage.clear(); } catch (e) { /* storage disabled */ }
    window.location.replace(home);
  }

  function hasTypedText() {
    var fields = document.querySelectorAll("input[type=search], input[type=text], textarea, input:not([type])");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value) { return true; } }
    return false;
  }

  // Fallback if the live stream is down: forget the shopper after the idle time anyway.
  window.setInterval(function () {
    if (Date.now() - lastActivity < idleMs + 1500) { return; }
    var welcome = document.querySelector("[data-welcome]");
    var personal = welcome && !welcome.classList.contains("is-hidden");
    if (window.location.pathname !== home || hasTypedText() || personal) {
      goHome();
    }
    lastActivity = Date.now();
  }, 1000);

  var toastTimer = null;
  function toast(text) {
    var el = document.querySelector("[data-toast]");
    if (!el) { return; }
    el.textContent = text;
    el.classList.remove("is-hidden");
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(function () { el.classList.add("is-hidden"); }, 5000);
  }

  function showWelcome(data) {
    var section = document.querySelector("[data-welcome]");
    if (!section) { return; }
    var title = section.querySelector("[data-welcome-title]");
    var list = section.querySelector("[data-welcome-offers]");
    title.textContent = data.first_name
      ? body.dataset.textWelcomeName.replace("__NAME__", data.first_name)
      : body.dataset.textWelcome;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var offers = data.offers || [];
    if (!offers.length) {
      var none = document.createElement("li");
      none.className = "offer";
      none.textContent = body.dataset.textNoOffers;
      list.appendChild(none);
    }
    offers.forEach(function (offer) {
      var li = document.createElement("li");
      li.className = "offer" + (offer.segments && offer.segments.length ? " offer-personal" : "");
      var strong = document.createElement("strong");
      strong.textContent = offer.title;
      li.appendChild(strong);
      if (offer.description) {
        var span = document.createElement("span");
        span.textContent = offer.description;
        li.appendChild(span);
      }
      list.appendChild(li);
    });
    section.classList.remove("is-hidden");
    var itsMe = document.querySelector("[data-its-me]");
    if (itsMe) { itsMe.classList.add("is-hidden"); }
    var end = document.querySelector("[data-end-session]");
    if (end) {
      end.classList.remove("is-hidden");
      var endButton = end.querySelector("button");
      if (endButton) { endButton.textContent = body.dataset.textNotMe; }
    }
    lastActivity = Date.now();
  }

  function flash() {
    body.classList.add("identify-flash");
    window.setTimeout(function () { body.classList.remove("identify-flash"); }, 3000);
  }

  function setPhone(nearby) {
    var itsMe = document.querySelector("[data-its-me]");
    var welcome = document.querySelector("[data-welcome]");
    if (!itsMe || (welcome && !welcome.classList.contains("is-hidden"))) { return; }
    itsMe.classList.toggle("is-hidden", !nearby);
  }

  function parse(event) {
    try { return JSON.parse(event.data); } catch (e) { return {}; }
  }

  if (window.EventSource) {
    var stream = new EventSource("/api/events");
    stream.addEventListener("welcome", function (e) {
      var data = parse(e);
      showWelcome(data);
      // The shopper's profile speaks another language: show this page again in it (the
      // server now renders it so, welcome included).
      var lang = String(data.locale || "").replace("-", "_").split("_")[0].toLowerCase();
      var offered = (body.dataset.languages || "").split(" ");
      if (lang && offered.indexOf(lang) >= 0 && lang !== document.documentElement.lang) {
        window.location.replace(window.location.href);
      }
    });
    stream.addEventListener("cleared", function () { goHome(); });
    stream.addEventListener("product", function (e) {
      var data = parse(e);
      if (data.sku) {
        window.location.assign(
          body.dataset.productUrl.replace("__SKU__", encodeURIComponent(data.sku)) + "?via=scan");
      } else {
        toast(body.dataset.textUnknownProduct);
      }
    });
    stream.addEventListener("identify", flash);
    stream.addEventListener("phone", function (e) { setPhone(!!parse(e).nearby); });
    stream.addEventListener("hello", function (e) { setPhone(!!parse(e).phone_nearby); });
    body.dataset.live = "1";
    stream.addEventListener("open", function () { body.dataset.liveOpen = "1"; });
  }
}());
