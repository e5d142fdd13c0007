// The queue page's enhancements. Everything works without this file: every action is a real form and every
// person in the list is a link. No build step, no dependencies, nothing fetched from elsewhere (the CSP
// forbids it anyway).
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
    return Array.from(text).length;
  }
  function bindEditor(area) {
    var out = document.getElementById(area.getAttribute("data-counter"));
    var editor = area.closest(".editor");
    var original = area.value;
    area.addEventListener("input", function () {
      // The underlines mark the text as drafted; once it changes they would point at the wrong words.
      if (editor) { editor.classList.toggle("edited", area.value !== original); }
      if (!out) { return; }
      var n = countFor(out.getAttribute("data-platform"), area.value);
      out.textContent = String(n);
      out.classList.toggle("over", n > parseInt(out.getAttribute("data-limit"), 10));
    });
  }

  // --- The list and the person in focus -------------------------------------------------------------
  var workspace, toastTimer = null;
  var showFailure = null;  // after a held approval was refused: show that person (key s)
  var pending = [];       // approvals held for the undo window: {id, name, action, body, row, index, pane, timer}
  var sending = {};       // turn id -> true while its approval is on its way to the server
  var refreshes = 0;      // list reads begun; a read answers only if none began, and nothing was decided, since
  var cache = {};         // turn id -> {at, promise of a parsed page}
  var CACHE_MS = 20000;

  function pane() { return document.getElementById("person"); }
  function list() { return document.querySelector("#waiting-list ol"); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#waiting-list li.row")); }
  function rowOf(id) { return document.querySelector('#waiting-list li.row[data-turn="' + id + '"]'); }
  function currentId() { var p = pane(); return p ? p.getAttribute("data-turn") : null; }
  function isPending(id) { return pending.some(function (p) { return p.id === String(id); }); }
  function undoSeconds() { return parseFloat(workspace.getAttribute("data-undo-seconds") || "5"); }

  function pageUrl(focus) {
    var params = new URLSearchParams(window.location.search);
    params.delete("notice");
    params.delete("focus");
    if (focus) { params.set("focus", focus); }
    var q = params.toString();
    return "/" + (q ? "?" + q : "");
  }
  function fetchPage(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected && r.url.indexOf("/login") >= 0) { window.location.assign("/login"); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { return html === null ? null : new DOMParser().parseFromString(html, "text/html"); });
  }
  function pageFor(id) {
    var hit = cache[id];
    if (hit && Date.now() - hit.at < CACHE_MS) { return hit.promise; }
    var promise = fetchPage(pageUrl(id)).catch(function () { return null; });
    cache[id] = { at: Date.now(), promise: promise };
    return promise;
  }

  function markCurrent(id) {
    rows().forEach(function (row) {
      var on = row.getAttribute("data-turn") === String(id);
      row.classList.toggle("current", on);
      var link = row.querySelector("a");
      if (on) { link.setAttribute("aria-current", "true"); } else { link.removeAttribute("aria-current"); }
    });
  }
  function showPane(node, id) {
    var old = pane();
    if (old) { old.replaceWith(node); } else { workspace.appendChild(node); }
    workspace.classList.remove("empty-queue");
    bindPane(node);
    markCurrent(id);
    window.history.replaceState(null, "", pageUrl(id));
    node.focus({ preventScroll: true });
    var row = rowOf(id);
    if (row) { row.scrollIntoView({ block: "nearest" }); }
    prefetchAround(id);
    heartbeat();
  }
  function focusTurn(id) {
    if (!id || String(id) === currentId()) { return Promise.resolve(); }
    markCurrent(id);
    return pageFor(id).then(function (doc) {
      var node = doc && doc.getElementById("person");
      if (!node || node.getAttribute("data-turn") !== String(id)) {
        delete cache[id];
        window.location.assign(pageUrl(id) + "#person");  // let the server show it (or say why not)
        return;
      }
      delete cache[id];  // a pane is shown once; the next visit reads it fresh
      showPane(document.adoptNode(node), id);
    });
  }
  function prefetchAround(id) {
    var all = rows(), i = all.indexOf(rowOf(id));
    [all[i + 1], all[i - 1]].forEach(function (row) { if (row) { pageFor(row.getAttribute("data-turn")); } });
  }
  function neighbour(id, step) {
    var all = rows(), i = all.indexOf(rowOf(id));
    if (i < 0) { return all[0] || null; }
    return all[i + step] || null;
  }
  function move(step) {
    var next = neighbour(currentId(), step);
    if (next) { focusTurn(next.getAttribute("data-turn")); }
  }
  // The person in focus was decided: take them out of the list and show the next one.
  function advanceFrom(id) {
    refreshes++;  // a list read already on its way was taken before this decision: it would bring them back
    var row = rowOf(id);
    var next = neighbour(id, 1) || neighbour(id, -1);
    var index = rows().indexOf(row);
    if (row) { row.remove(); }
    var old = pane();
    if (old && old.getAttribute("data-turn") === String(id)) {
      if (next) {
        focusTurn(next.getAttribute("data-turn"));
      } else {
        old.remove();
        showEmpty();
      }
    }
    adjustCount(-1);
    return { row: row, index: index, pane: old };
  }
  function showEmpty() {
    if (document.querySelector("#waiting-list .empty")) { return; }
    var nav = document.getElementById("waiting-list");
    var p = document.createElement("p");
    p.className = "empty";
    p.textContent = nav.getAttribute("data-empty") || "Nobody is waiting. Well done.";
    nav.appendChild(p);
    workspace.classList.add("empty-queue");
  }
  function adjustCount(step) {
    var el = document.getElementById("waiting-count");
    var view = new URLSearchParams(window.location.search).get("status");
    if (view === "escalated") { el = document.getElementById("escalated-count"); }
    if (!el || !/^[0-9,]+$/.test(el.textContent)) { return; }
    var n = Math.max(0, parseInt(el.textContent.replace(/,/g, ""), 10) + step);
    el.textContent = n.toLocaleString("en");
  }

  // --- Messages --------------------------------------------------------------------------------------
  function toast(text, opts) {
    var el = document.getElementById("toast");
    if (!el) { return; }
    opts = opts || {};
    el.textContent = text;
    el.classList.toggle("error", !!opts.error);
    (opts.buttons || []).forEach(function (b) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = b.label;
      button.addEventListener("click", b.run);
      el.appendChild(button);
    });
    el.hidden = false;
    if (toastTimer) { window.clearTimeout(toastTimer); }
    toastTimer = opts.stay ? null : window.setTimeout(function () { el.hidden = true; }, opts.ms || 4000);
  }
  function problemText(doc) {
    var el = doc && (doc.querySelector("main .notice.error") || doc.querySelector("main .error") ||
                     doc.querySelector("main .notice"));
    return el ? el.textContent.trim() : "The server did not accept it.";
  }

  // --- Approve, with a few seconds to undo ------------------------------------------------------------
  // The approval is held here, in the page, for the undo window; only then is it sent. So an undone
  // approval never reaches the server: no reply in the outbox, no reply.approved webhook. Leaving the page
  // sends what is held at once (sendBeacon), so nothing approved is lost by closing the tab.
  function approve(form) {
    var p = pane();
    var id = p.getAttribute("data-turn");
    var name = (p.querySelector("#person-name") || {}).textContent || "them";
    var body = new FormData(form);
    var held = { id: id, name: name.trim(), action: form.getAttribute("action"), body: body };
    var removed = advanceFrom(id);
    held.row = removed.row; held.index = removed.index; held.pane = removed.pane;
    held.timer = window.setTimeout(function () { send(held); }, undoSeconds() * 1000);
    pending.push(held);
    toast("Approved the reply to " + held.name + ". It goes to the outbox in " + undoSeconds() + " s.",
          { ms: undoSeconds() * 1000, buttons: [{ label: "Undo (u)", run: undo }] });
  }
  function release(held) { pending = pending.filter(function (p) { return p !== held; }); }
  function send(held) {
    release(held);
    sending[held.id] = true;
    return fetch(held.action, { method: "POST", body: held.body, credentials: "same-origin", redirect: "manual",
                                keepalive: true, headers: { "Accept": "text/html" } })
      .then(function (r) {
        delete sending[held.id];
        if (r.type === "opaqueredirect" || (r.status >= 300 && r.status < 400)) {
          refreshes++;  // decided: a list read begun before the server knew would bring them back
          return;
        }
        return r.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var node = doc.getElementById("person");
          var mine = node && node.getAttribute("data-turn") === held.id ? document.adoptNode(node) : null;
          if (mine && mine.querySelector(".lost")) { held.row = null; }  // decided by someone else: not waiting
          restore(held, mine);
          showFailure = function () { focusTurn(held.id); hideToast(); showFailure = null; };
          toast("Not sent: the reply to " + held.name + ". " + problemText(doc), { error: true, stay: true,
            buttons: [{ label: "Show (s)", run: showFailure }] });
        });
      })
      .catch(function () {
        delete sending[held.id];
        restore(held, null);
        toast("Not sent: the reply to " + held.name + " (no connection). It is back in the list.",
              { error: true, stay: true });
      });
  }
  function hideToast() { var el = document.getElementById("toast"); if (el) { el.hidden = true; } }
  // Put a held (or refused) person back in the list; ``node`` is the pane to show for them when there is one.
  function restore(held, node) {
    var ol = list();
    if (!ol) {
      var nav = document.getElementById("waiting-list");
      var empty = nav.querySelector(".empty");
      if (empty) { empty.remove(); }
      ol = document.createElement("ol");
      nav.insertBefore(ol, nav.firstChild);
    }
    if (held.row && !rowOf(held.id)) {
      var at = rows()[held.index];
      if (at) { ol.insertBefore(held.row, at); } else { ol.appendChild(held.row); }
      adjustCount(1);
    }
    if (node) { cache[held.id] = { at: Date.now(), promise: Promise.resolve(wrap(node)) }; }
  }
  function wrap(node) { var doc = document.implementation.createHTMLDocument(""); doc.body.appendChild(node); return doc; }
  function undo() {
    var held = pending.pop();
    if (!held) { return; }
    window.clearTimeout(held.timer);
    restore(held, null);
    if (held.pane) { showPane(held.pane, held.id); }
    toast("Undone: nothing was sent to " + held.name + ".");
  }
  window.addEventListener("pagehide", function () {
    pending.splice(0).forEach(function (held) {
      window.clearTimeout(held.timer);
      navigator.sendBeacon(held.action, held.body);
    });
  });

  // --- Reject, escalate, regenerate without leaving the page ------------------------------------------
  function decide(form) {
    var p = pane();
    var id = p.getAttribute("data-turn");
    var name = ((p.querySelector("#person-name") || {}).textContent || "them").trim();
    var what = form.getAttribute("data-action");
    fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form), credentials: "same-origin",
                                        redirect: "manual", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.type === "opaqueredirect" || (r.status >= 300 && r.status < 400)) {
          advanceFrom(id);
          toast({ reject: "Rejected: " + name + " gets no reply.", escalate: "Escalated: " + name + ".",
                  regenerate: "A new draft is being written for " + name + "." }[what]);
          return;
        }
        return r.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var node = doc.getElementById("person");
          if (node && node.getAttribute("data-turn") === id) { showPane(document.adoptNode(node), id); }
          toast(problemText(doc), { error: true, stay: true });
        });
      })
      .catch(function () { form.submit(); });
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
  function openAction(kind) {
    var p = pane();
    var details = p && p.querySelector("details.act." + kind);
    if (!details) { return; }
    details.open = true;
    var input = details.querySelector("input[name=reason], input[name=guidance]");
    if (input) { input.focus(); }
  }
  function editAtEnd() {
    var area = pane() && pane().querySelector("textarea[data-edit]");
    if (!area) { return; }
    area.focus();
    var end = area.value.length;
    area.setSelectionRange(end, end);
    area.scrollTop = area.scrollHeight;
  }
  function approveFocused() {
    var form = pane() && pane().querySelector("form.approve");
    if (form && form.reportValidity()) { approve(form); }
  }
  document.addEventListener("keydown", function (ev) {
    if (!workspace) {
      if (ev.key === "?" && !typing(ev.target)) { openHelp(); ev.preventDefault(); }
      return;
    }
    if (typing(ev.target)) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && ev.target.matches("form.approve textarea")) {
        ev.preventDefault();
        approveFocused();
      } else if (ev.key === "Escape") {
        var details = ev.target.closest("details");
        if (details) { details.open = false; }
        ev.target.blur();
        if (pane()) { pane().focus({ preventScroll: true }); }
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var help = document.getElementById("keys-help");
    if (help && help.open) { return; }
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": if (pane()) { approveFocused(); } break;
      case "e": editAtEnd(); break;
      case "r": openAction("reject"); break;
      case "x": openAction("escalate"); break;
      case "g": openAction("regenerate"); break;
      case "u": undo(); break;
      case "s": if (showFailure) { showFailure(); } else { return; } break;
      case "d":
        var discard = pane() && pane().querySelector("[data-discard]");
        if (discard) { discard.click(); } else { return; }
        break;
      case "f":
        var followUp = pane() && pane().querySelector("form[data-follow-up]");
        if (followUp && followUp.reportValidity()) { followUp.requestSubmit(); } else { return; }
        break;
      case "/": var q = document.getElementById("q"); if (q) { q.focus(); q.select(); } break;
      case "?": openHelp(); break;
      default: return;
    }
    ev.preventDefault();
  });

  // --- The person pane: wire what the server rendered --------------------------------------------------
  function bindPane(node) {
    if (!node) { return; }
    Array.prototype.forEach.call(node.querySelectorAll("textarea[data-counter]"), bindEditor);
    var form = node.querySelector("form.approve");
    if (form) {
      form.addEventListener("submit", function (ev) { ev.preventDefault(); approve(form); });
    }
    Array.prototype.forEach.call(node.querySelectorAll("details.act form"), function (f) {
      f.addEventListener("submit", function (ev) { ev.preventDefault(); decide(f); });
    });
    bindSnippets(node);
  }

  // --- Live queue: who arrived, who was taken, the counts ---------------------------------------------
  // Reads the page itself (the same server-rendered list, so it is exactly what a reload would show) and
  // swaps the list in, keeping the person in focus and leaving out held approvals. It runs when the server
  // says the brand's queue changed (server-sent events, /queue/events) and, while no event stream is open
  // (no EventSource, between reconnections, refused past the server's limit), every few seconds instead.
  var pollTimer = null, streamFailures = 0, STREAM_TRIES = 3;
  function refresh() {
    if (document.hidden) { return; }
    var mine = ++refreshes;
    fetchPage(pageUrl(null)).then(function (doc) {
      if (!doc || mine !== refreshes) { return; }  // a later read is on its way, or a decision came since
      var fresh = doc.querySelector("#waiting-list");
      if (!fresh) { return; }
      Array.prototype.forEach.call(fresh.querySelectorAll("li.row"), function (row) {
        var id = row.getAttribute("data-turn");
        if (isPending(id) || sending[id]) { row.remove(); }
      });
      var nav = document.getElementById("waiting-list");
      nav.replaceWith(document.adoptNode(fresh));
      var id = currentId();
      if (id) { markCurrent(id); }
      ["waiting-count", "escalated-count", "left-behind-count"].forEach(function (key) {
        var a = document.getElementById(key), b = doc.getElementById(key);
        if (a && b) { a.textContent = b.textContent; }
      });
      if (pending.length) { adjustCount(-pending.length); }
      var p = pane();
      var gone = p && !rowOf(id) && !isPending(id);
      if (p) { p.classList.toggle("taken", !!gone); }
      var note = p && p.querySelector(".gone-note");
      if (gone && !note) {
        note = document.createElement("p");
        note.className = "notice error gone-note";
        note.setAttribute("role", "alert");
        note.textContent = "This person is no longer waiting in this view: someone decided, or a new draft is " +
          "on its way. Press j to go on.";
        p.insertBefore(note, p.querySelector(".pane-body"));
      } else if (!gone && note) { note.remove(); }
      if (!p && rows().length) { focusTurn(rows()[0].getAttribute("data-turn")); }
    }).catch(function () { /* offline for a moment: try again next tick */ });
  }
  function poll(on) {
    if (on && !pollTimer) {
      pollTimer = window.setInterval(refresh, parseFloat(workspace.getAttribute("data-poll-seconds") || "5") * 1000);
    } else if (!on && pollTimer) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
  }
  function listen() {
    var url = workspace.getAttribute("data-events");
    poll(true);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
    if (!url || typeof window.EventSource !== "function") { return; }
    var source = new EventSource(url);
    source.addEventListener("open", function () {
      streamFailures = 0;
      poll(false);
      workspace.setAttribute("data-live", "events");
    });
    source.addEventListener("queue", refresh);
    source.addEventListener("error", function () {
      // The stream ended (its lifetime, a restart: the browser reconnects) or was refused: poll meanwhile,
      // and for good after repeated failures.
      poll(true);
      workspace.setAttribute("data-live", "polling");
      streamFailures += 1;
      if (source.readyState === EventSource.CLOSED || streamFailures >= STREAM_TRIES) { source.close(); }
    });
  }

  // --- Presence: who else has this person open ---------------------------------------------------------
  // Every few seconds while a person is in focus the page says so (and whether the reply box was changed);
  // the answer names the other reviewers on the same person.
  var BEAT_MS = 10000, beatTimer = null;
  function csrfToken() {
    var field = document.querySelector("input[name=_csrf_token]");
    return field ? field.value : "";
  }
  function heartbeat() {
    if (beatTimer) { window.clearTimeout(beatTimer); }
    var p = pane();
    var slot = p && p.querySelector("[data-presence]");
    if (!slot) { return; }
    var editor = p.querySelector(".editor");
    var body = new URLSearchParams({ editing: editor && editor.classList.contains("edited") ? "1" : "0" });
    fetch(slot.getAttribute("data-presence"), { method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (answer && pane() === p) { slot.textContent = answer.sentence || ""; }
      })
      .catch(function () { /* offline for a moment */ });
    beatTimer = window.setTimeout(heartbeat, document.hidden ? BEAT_MS * 3 : BEAT_MS);
  }

  // --- Saved replies: ";" in the reply box, or the picker ---------------------------------------------
  // The server renders each saved reply already filled in for the person in focus (data-texts); the picker
  // is a text box with the names as suggestions: Enter inserts the chosen one where the cursor was.
  function bindSnippets(node) {
    var picker = node.querySelector("[data-snippet-picker]");
    var area = node.querySelector("form.approve textarea[data-edit]");
    if (!picker || !area) { return; }
    var texts = JSON.parse(picker.getAttribute("data-texts") || "{}");
    var input = picker.querySelector("input");
    var caret = null;
    picker.hidden = false;
    area.addEventListener("keydown", function (ev) {
      if (ev.key !== ";" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var before = area.value.slice(0, area.selectionStart);
      if (before && !/\s$/.test(before)) { return; }  // a semicolon inside a sentence stays a semicolon
      ev.preventDefault();
      caret = [area.selectionStart, area.selectionEnd];
      input.value = "";
      input.focus();
    });
    function pick(name) {
      var wanted = name.trim().toLowerCase();
      var names = Object.keys(texts);
      return names.filter(function (n) { return n.toLowerCase() === wanted; })[0] ||
             names.filter(function (n) { return n.toLowerCase().indexOf(wanted) === 0; })[0] || null;
    }
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") {
        ev.preventDefault();
        ev.stopPropagation();
        back("");
      } else if (ev.key === "Enter") {
        ev.preventDefault();
        var name = pick(input.value);
        if (name) { back(texts[name]); } else { input.setAttribute("aria-invalid", "true"); }
      }
    });
    function back(text) {
      var at = caret || [area.value.length, area.value.length];
      area.focus();
      area.setRangeText(text, at[0], at[1], "end");
      area.dispatchEvent(new Event("input"));
      input.value = "";
      input.removeAttribute("aria-invalid");
      caret = null;
    }
  }

  // --- Search: the address carries only the filters in use -------------------------------------------
  function bindSearch(form) {
    function fields() { return Array.prototype.slice.call(form.elements).filter(function (el) { return el.name; }); }
    form.addEventListener("submit", function () {
      fields().forEach(function (el) { if (!el.value) { el.disabled = true; } });
    });
    window.addEventListener("pageshow", function () { fields().forEach(function (el) { el.disabled = false; }); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-open-help]"), function (b) {
      b.addEventListener("click", openHelp);
    });
    var search = document.getElementById("search");
    if (search) { bindSearch(search); }
    workspace = document.getElementById("workspace");
    if (!workspace) {
      Array.prototype.forEach.call(document.querySelectorAll("textarea[data-counter]"), bindEditor);
      return;
    }
    bindPane(pane());
    document.addEventListener("click", function (ev) {
      var link = ev.target.closest && ev.target.closest("#waiting-list li.row a");
      if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) { return; }
      ev.preventDefault();
      focusTurn(link.closest("li.row").getAttribute("data-turn"));
    });
    var id = currentId();
    if (id) { prefetchAround(id); heartbeat(); }
    listen();
  });
})();
