// The queue page's enhancements. Everything works without this file: every action is a real form.
// No build step, no dependencies, nothing fetched from elsewhere (the CSP forbids it anyway).
(function () {
  "use strict";

  // --- Length counter -------------------------------------------------------------------------------
  // The server renders the exact count (assistant.policy.count_length); this keeps it live while editing.
  // For X this is an APPROXIMATION of twitter-text's weighted length: code points in the Latin,
  // punctuation and common-symbol ranges count 1, everything else (CJK, most emoji) counts 2, and every
  // URL counts 23. Emoji ZWJ sequences and some ranges differ; the server re-checks on approval.
  var URL_RE = /\bhttps?:\/\/[^\s]+|\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|org|net|io|co|example|app|dev|ly)(\/[^\s]*)?/gi;
  function xWeight(cp) {
    return (cp <= 0x10ff || (cp >= 0x2000 && cp <= 0x200d) || (cp >= 0x2010 && cp <= 0x201f) ||
            (cp >= 0x2032 && cp <= 0x2037)) ? 1 : 2;
  }
  function countFor(platform, text) {
    var chars = Array.from(text);
    if (platform === "x" || platform === "twitter") {
      var urls = 0;
      var rest = text.replace(URL_RE, function () { urls += 1; return ""; });
      var n = urls * 23;
      Array.from(rest).forEach(function (ch) { n += xWeight(ch.codePointAt(0)); });
      return n;
    }
    if (platform === "mastodon") {
      var u = 0;
      var r = text.replace(/\bhttps?:\/\/[^\s]+/gi, function () { u += 1; return ""; });
      return u * 23 + Array.from(r).length;
    }
    if (platform === "bluesky" && typeof Intl !== "undefined" && Intl.Segmenter) {
      return Array.from(new Intl.Segmenter().segment(text)).length;  // graphemes
    }
    return chars.length;
  }
  function bindCounter(area) {
    var out = document.getElementById(area.getAttribute("data-counter"));
    if (!out) { return; }
    var limit = parseInt(out.getAttribute("data-limit"), 10);
    var update = function () {
      var n = countFor(out.getAttribute("data-platform"), area.value);
      out.textContent = String(n);
      out.classList.toggle("over", n > limit);
    };
    area.addEventListener("input", update);
  }

  // --- Focus: one turn at a time --------------------------------------------------------------------
  function turns() { return Array.prototype.slice.call(document.querySelectorAll("article.turn")); }
  function current() { return document.querySelector("article.turn.focus") || turns()[0] || null; }
  function focusTurn(el) {
    if (!el) { return; }
    turns().forEach(function (t) { t.classList.remove("focus"); t.removeAttribute("aria-current"); });
    el.classList.add("focus");
    el.setAttribute("aria-current", "true");
    el.focus({ preventScroll: true });
    el.scrollIntoView({ block: "start" });
    loadHistory(el);
  }
  // Only the card in focus comes with the person's history; load it for the others when they get focus.
  // (Without this script, each card links to ?focus=<id>, which renders it with its history.)
  function loadHistory(card) {
    var slot = card.querySelector("[data-history-src]");
    if (!slot || slot.getAttribute("data-loading")) { return; }
    slot.setAttribute("data-loading", "1");
    fetch(slot.getAttribute("data-history-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { slot.removeAttribute("data-loading"); return; }
        var parsed = new DOMParser().parseFromString(html, "text/html").querySelector("section.history");
        if (parsed) { slot.replaceWith(document.adoptNode(parsed)); }
      })
      .catch(function () { slot.removeAttribute("data-loading"); });
  }
  function move(step) {
    var list = turns();
    var i = list.indexOf(current());
    var next = list[Math.min(list.length - 1, Math.max(0, i + step))];
    focusTurn(next);
  }
  function within(selector) {
    var t = current();
    return t ? t.querySelector(selector) : null;
  }

  // --- Keys -----------------------------------------------------------------------------------------
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function openHelp() {
    var d = document.getElementById("keys-help");
    if (d && !d.open) { d.showModal(); }
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (typing(ev.target)) {
      if (ev.key === "Escape") { ev.target.blur(); var t = current(); if (t) { t.focus({ preventScroll: true }); } }
      return;
    }
    var help = document.getElementById("keys-help");
    if (help && help.open) { return; }
    if (!document.querySelector("article.turn") && ev.key !== "?") { return; }
    var el;
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a":
        el = within("form.approve");
        if (el) { el.requestSubmit ? el.requestSubmit() : el.submit(); }
        break;
      case "e": el = within("textarea[data-edit]"); if (el) { el.focus(); } break;
      case "r": el = within("form[data-action=reject] input[name=reason]"); if (el) { el.focus(); } break;
      case "g": el = within("form[data-action=regenerate] input[name=guidance]"); if (el) { el.focus(); } break;
      case "?": openHelp(); break;
      default: return;
    }
    ev.preventDefault();
  });

  // --- The waiting count, without a reload ------------------------------------------------------------
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var tick = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body || typeof body.waiting !== "number") { return; }
          el.textContent = body.label || String(body.waiting);
          var esc = document.getElementById("escalated-count");
          if (esc && body.escalated_label) { esc.textContent = body.escalated_label; }
        })
        .catch(function () { /* offline for a moment: try again next tick */ });
    };
    window.setInterval(tick, 10000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-counter]"), bindCounter);
    var count = document.getElementById("waiting-count");
    if (count) { poll(count); }
    Array.prototype.forEach.call(document.querySelectorAll("[data-open-help]"), function (b) {
      b.addEventListener("click", openHelp);
    });
    var first = document.querySelector("article.turn.focus");
    if (first) { first.setAttribute("aria-current", "true"); }
  });
})();
