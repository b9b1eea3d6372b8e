/* On-screen keyboard for the kiosk's touch screen (full-screen Chromium under cage has no
 * system keyboard). It opens under any text field that gets focus (search, review form,
 * e-mail), types where the caret is and fires "input" events like real typing, so the
 * page's own scripts and the idle timer see it. AZERTY when the page is French, QWERTY in
 * English; an accents layer; "@" and domain keys for e-mail fields. Plain JS, no build. */
(function () {
  "use strict";

  var FIELDS = "input[type=search], input[type=text], input[type=email], input[type=password], input:not([type]), textarea";
  var LETTERS = {
    fr: ["azertyuiop", "qsdfghjklm", "wxcvbn'"],
    en: ["qwertyuiop", "asdfghjkl'", "zxcvbnm"]
  };
  var DIGITS = "1234567890";
  var ACCENTS = ["éèêëàâäæ", "çùûüôöœî", "ïñ«»!?;:"];
  var EMAIL_KEYS = ["@", ".", "-", "_", ".fr", ".com"];
  var WORDS = {
    fr: { shift: "Majuscules", back: "Effacer", space: "Espace", enter: "Valider",
          hide: "Masquer le clavier", accents: "Accents", letters: "Lettres", label: "Clavier" },
    en: { shift: "Shift", back: "Backspace", space: "Space", enter: "Enter",
          hide: "Hide keyboard", accents: "Accents", letters: "Letters", label: "Keyboard" }
  };

  var panel = null;
  var target = null;
  var shifted = false;
  var accents = false;

  function lang() {
    var l = (document.documentElement.lang || "fr").slice(0, 2).toLowerCase();
    return LETTERS[l] ? l : "fr";
  }

  function isField(el) {
    return !!(el && el.matches && el.matches(FIELDS) && !el.readOnly && !el.disabled &&
              !el.closest("[data-no-osk]"));
  }

  function isEmail(el) {
    // Password fields get the same symbol keys: store IT's generated /admin passwords use - and _.
    return el.type === "email" || el.inputMode === "email" || el.type === "password";
  }

  function key(label, action, opts) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "osk-key" + (opts && opts.cls ? " " + opts.cls : "");
    b.textContent = label;
    b.dataset.key = action;
    if (opts && opts.aria) { b.setAttribute("aria-label", opts.aria); }
    if (opts && opts.pressed !== undefined) { b.setAttribute("aria-pressed", opts.pressed ? "true" : "false"); }
    return b;
  }

  function row(keys) {
    var r = document.createElement("div");
    r.className = "osk-row";
    keys.forEach(function (k) { r.appendChild(k); });
    return r;
  }

  function chars(text) {
    return text.split("").map(function (c) {
      var shown = shifted ? c.toUpperCase() : c;
      return key(shown, "char:" + shown);
    });
  }

  function render() {
    var w = WORDS[lang()];
    var email = target && isEmail(target);
    var letters = accents ? ACCENTS : LETTERS[lang()];
    panel.setAttribute("aria-label", w.label);
    panel.dataset.layout = accents ? "accents" : lang() === "fr" ? "azerty" : "qwerty";
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    panel.appendChild(row(DIGITS.split("").map(function (c) { return key(c, "char:" + c); })));
    panel.appendChild(row(chars(letters[0])));
    panel.appendChild(row(chars(letters[1])));
    var third = chars(letters[2]);
    third.unshift(key("⇧", "shift", { cls: "osk-wide", aria: w.shift, pressed: shifted }));
    third.push(key(",", "char:,"), key(".", "char:."));
    third.push(key("⌫", "back", { cls: "osk-wide", aria: w.back }));
    panel.appendChild(row(third));
    var last = [key(accents ? "abc" : "àé", "accents", {
      cls: "osk-wide", aria: accents ? w.letters : w.accents, pressed: accents })];
    if (email) {
      EMAIL_KEYS.forEach(function (c) { last.push(key(c, "char:" + c)); });
    } else {
      last.push(key("@", "char:@"), key("-", "char:-"));
    }
    last.push(key(w.space, "char: ", { cls: "osk-space" }));
    last.push(key("⏎", "enter", { cls: "osk-wide osk-enter", aria: w.enter }));
    last.push(key("⌨✕", "hide", { cls: "osk-wide", aria: w.hide }));
    panel.appendChild(row(last));
  }

  function fire(el) {
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function insert(text) {
    var el = target;
    if (!el) { return; }
    var max = el.maxLength > 0 ? el.maxLength : Infinity;
    var start = null;
    var end = null;
    try { start = el.selectionStart; end = el.selectionEnd; } catch (e) { /* type=email */ }
    if (start === null || start === undefined) {
      if (el.value.length + text.length > max) { return; }
      el.value += text;
    } else {
      if (el.value.length - (end - start) + text.length > max) { return; }
      el.setRangeText(text, start, end, "end");
    }
    fire(el);
  }

  function backspace() {
    var el = target;
    if (!el || !el.value) { return; }
    var start = null;
    var end = null;
    try { start = el.selectionStart; end = el.selectionEnd; } catch (e) { /* type=email */ }
    if (start === null || start === undefined) {
      el.value = el.value.slice(0, -1);
    } else if (start !== end) {
      el.setRangeText("", start, end, "end");
    } else if (start > 0) {
      el.setRangeText("", start - 1, start, "end");
    }
    fire(el);
  }

  function enter() {
    var el = target;
    if (!el) { return; }
    if (el.tagName === "TEXTAREA") { insert("\n"); return; }
    var form = el.form;
    if (form && form.requestSubmit) {
      hide();
      form.requestSubmit();
    } else {
      hide();
    }
  }

  function press(action) {
    if (action.indexOf("char:") === 0) {
      insert(action.slice(5));
      if (shifted) { shifted = false; render(); }
    } else if (action === "back") {
      backspace();
    } else if (action === "shift") {
      shifted = !shifted;
      render();
    } else if (action === "accents") {
      accents = !accents;
      render();
    } else if (action === "enter") {
      enter();
      return;
    } else if (action === "hide") {
      var field = target;
      hide();
      refocusQuietly(field);
      return;
    }
    if (target && document.activeElement !== target &&
        !(document.activeElement && panel.contains(document.activeElement))) {
      target.focus();
    }
  }

  /* Give the field its focus back without opening the keyboard again. */
  function refocusQuietly(field) {
    if (field && document.activeElement !== field) {
      field.dataset.oskClosed = "1";
      field.focus();
    }
  }

  function build() {
    panel = document.createElement("div");
    panel.className = "osk is-hidden";
    panel.setAttribute("role", "group");
    panel.dataset.osk = "";
    // A tap on a key must leave the caret in the field (no focus change, no blur).
    panel.addEventListener("pointerdown", function (e) {
      if (e.target.closest(".osk-key")) { e.preventDefault(); }
    });
    panel.addEventListener("mousedown", function (e) { e.preventDefault(); });
    panel.addEventListener("click", function (e) {
      var b = e.target.closest(".osk-key");
      if (b) { press(b.dataset.key); }
    });
    document.body.appendChild(panel);
  }

  function show(el) {
    if (!panel) { build(); }
    if (target !== el) { shifted = false; accents = false; }
    target = el;
    render();
    panel.classList.remove("is-hidden");
    document.body.classList.add("osk-open");
    document.body.style.setProperty("--osk-height", panel.offsetHeight + "px");
    window.setTimeout(reveal, 0);
  }

  /* Scroll the field into the part of the screen the keyboard leaves, a third of the way
   * down, so what follows it (a consent box, the send button) shows above the keys too. */
  function reveal() {
    if (!target || !panel) { return; }
    var r = target.getBoundingClientRect();
    var visible = window.innerHeight - panel.offsetHeight;
    if (r.top >= 0 && r.bottom <= visible - 16) { return; }
    window.scrollBy(0, r.top - Math.max(16, (visible - r.height) / 3));
  }

  function hide() {
    if (!panel) { return; }
    panel.classList.add("is-hidden");
    // The room under the page stays: removing it would move the page under a finger that is
    // tapping (focus leaves the field on pointerdown, the click lands on pointerup).
    target = null;
  }

  document.addEventListener("focusin", function (e) {
    var el = e.target;
    if (panel && panel.contains(el)) { return; }
    if (isField(el)) {
      if (el.dataset.oskClosed) { delete el.dataset.oskClosed; return; }
      show(el);
    } else {
      hide();
    }
  });
  // Tapping the field again brings the keyboard back after "hide".
  document.addEventListener("pointerdown", function (e) {
    if (isField(e.target) && e.target === document.activeElement &&
        (!panel || panel.classList.contains("is-hidden"))) {
      show(e.target);
    }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && panel && !panel.classList.contains("is-hidden")) {
      var field = target;
      hide();
      refocusQuietly(field);
    }
  });
  // A field focused before this script ran (autofocus).
  if (isField(document.activeElement)) { show(document.activeElement); }
}());
