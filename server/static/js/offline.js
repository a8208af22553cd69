// Offline outbox for form pages: a form submitted without signal is kept on this phone (IndexedDB, photos
// included) and sent when the connection returns, exactly once (the server finds the record by `_token`).
// Texts come from the data-text-* attributes of forms/_offline.html. See docs/offline.md.
(() => {
  "use strict";
  if (window.fanganOutbox) return;  // loaded twice on one page

  const DB_NAME = "fangan";
  const OUTBOX = "fangan-outbox";        // one record per form, key: its _token
  const USED = "fangan-used-tokens";     // tokens already submitted from this phone: a kept page must not reuse one
  const USED_KEEP_MS = 30 * 24 * 3600 * 1000;
  const RETRY_MS = 30000;
  const SUBMIT_GRACE_MS = 10 * 60 * 1000;  // a form another tab is submitting the usual way: leave it that long
  const SUBMITTED_KEY = "fangan-outbox-submitted";  // sessionStorage: the form this tab has just submitted

  const box = document.getElementById("outbox");
  const form = document.getElementById("fangan-form");
  const pageUser = box ? box.dataset.user : null;   // null: not a form page, send nothing from here
  const loginPath = box && box.dataset.loginUrl ? new URL(box.dataset.loginUrl, location.href).pathname : "/login";
  const inFlight = new Set();
  let timer = null;
  let flushing = null;

  // ---------------------------------------------------------------- texts
  function text(name, vars = {}) {
    const key = "text" + name.replace(/(^|-)([a-z])/g, (_m, _d, c) => c.toUpperCase());
    let out = (box && box.dataset[key]) || "";
    for (const [k, v] of Object.entries(vars)) out = out.split(`{${k}}`).join(String(v));
    return out;
  }

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "text") node.textContent = v;
      else if (k === "className") node.className = v;
      else if (k === "onclick") node.addEventListener("click", v);
      else node.setAttribute(k, v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // ---------------------------------------------------------------- IndexedDB
  let dbPromise = null;

  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const request = indexedDB.open(DB_NAME, 1);
        request.onupgradeneeded = () => {
          const db = request.result;
          if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, {keyPath: "token"});
          if (!db.objectStoreNames.contains(USED)) db.createObjectStore(USED, {keyPath: "token"});
        };
        request.onsuccess = () => {
          const db = request.result;
          db.onversionchange = () => { db.close(); dbPromise = null; };
          resolve(db);
        };
        request.onerror = () => reject(request.error);
        request.onblocked = () => reject(new Error("IndexedDB blocked"));
      });
      dbPromise.catch(() => { dbPromise = null; });
    }
    return dbPromise;
  }

  // Run `work(store)` in one transaction; resolves with the result of the request it returns, once committed.
  async function withStore(name, mode, work) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      let result;
      const request = work(tx.objectStore(name));
      if (request) request.onsuccess = () => { result = request.result; };
      tx.oncomplete = () => resolve(result);
      tx.onerror = tx.onabort = () => reject(tx.error || new Error("IndexedDB transaction failed"));
    });
  }

  const allItems = () => withStore(OUTBOX, "readonly", (s) => s.getAll());
  const getItem = (token) => withStore(OUTBOX, "readonly", (s) => s.get(token));
  const putItem = (item) => withStore(OUTBOX, "readwrite", (s) => s.put(item));
  const deleteItem = (token) => withStore(OUTBOX, "readwrite", (s) => s.delete(token));
  const markUsed = (token) => withStore(USED, "readwrite", (s) => s.put({token, at: Date.now()}));
  const isUsed = (token) => withStore(USED, "readonly", (s) => s.getKey(token)).then((key) => key !== undefined);

  function patchItem(token, changes) {  // no-op if it was discarded meanwhile
    return withStore(OUTBOX, "readwrite", (s) => {
      const request = s.get(token);
      request.onsuccess = () => { if (request.result) s.put({...request.result, ...changes}); };
    });
  }

  function pruneUsed() {
    const limit = Date.now() - USED_KEEP_MS;
    return withStore(USED, "readwrite", (s) => {
      const request = s.openCursor();
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor) return;
        if (cursor.value.at < limit) cursor.delete();
        cursor.continue();
      };
    });
  }

  // ---------------------------------------------------------------- form data <-> stored entries
  // Files are copied into the record (a Blob with its name and type): the phone's file may be gone later.
  async function toEntries(formData) {
    const entries = [];
    for (const [name, value] of formData) {
      if (typeof value === "string") {
        entries.push([name, value]);
      } else {
        const blob = new Blob([await value.arrayBuffer()], {type: value.type});
        entries.push([name, {file: true, name: value.name, type: value.type, lastModified: value.lastModified, blob}]);
      }
    }
    return entries;
  }

  function toFile(value) {
    return new File([value.blob], value.name, {type: value.type, lastModified: value.lastModified});
  }

  function toFormData(entries, csrf) {
    const formData = new FormData();
    for (const [name, value] of entries) {
      if (name === "csrf_token" && csrf) formData.append(name, csrf);
      else if (typeof value === "string") formData.append(name, value);
      else formData.append(name, toFile(value));
    }
    return formData;
  }

  function entriesSize(entries) {
    return entries.reduce((n, [, v]) => n + (typeof v === "string" ? v.length : v.blob.size), 0);
  }

  function newToken() {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function tokenInput() {
    return form ? form.querySelector('input[name="_token"]') : null;
  }

  function pageCsrf() {
    const input = document.querySelector('#fangan-form input[name="csrf_token"]');
    return (box && box.dataset.csrf) || (input && input.value) || "";
  }

  function setPageCsrf(csrf) {
    if (box) box.dataset.csrf = csrf;
    document.querySelectorAll('input[name="csrf_token"]').forEach((input) => { input.value = csrf; });
  }

  // ---------------------------------------------------------------- sending
  // One POST of a kept form; the answer is one of: sent, login, refused (not a form page: CSRF?), attention,
  // later (server busy or broken), network (no signal, or no answer in time).
  async function post(item, csrf) {
    const controller = new AbortController();
    // Generous: a minute, plus the time to upload at about 25 kB/s.
    const timeout = setTimeout(() => controller.abort(), 60000 + entriesSize(item.entries) / 25);
    try {
      const response = await fetch(item.action, {method: "POST", body: toFormData(item.entries, csrf),
        credentials: "same-origin", redirect: "follow", signal: controller.signal});
      const path = new URL(response.url, location.href).pathname;
      if (response.redirected && path.startsWith("/f/records/")) return {kind: "sent", url: response.url};
      if (response.redirected && path === loginPath) return {kind: "login"};
      if (response.status === 400) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        return {kind: page.getElementById("fangan-form") ? "attention" : "refused"};
      }
      if (response.status >= 500 || response.status === 429 || response.status === 408) return {kind: "later"};
      return {kind: "attention"};
    } catch (_error) {
      return {kind: "network"};
    } finally {
      clearTimeout(timeout);
    }
  }

  // A new CSRF token from the form's own page (it expires, and logging in again changes it).
  async function freshCsrf(action) {
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), 60000);
    try {
      const response = await fetch(action, {credentials: "same-origin", cache: "no-store", signal: controller.signal});
      if (response.redirected && new URL(response.url, location.href).pathname === loginPath) return {kind: "login"};
      if (!response.ok) return {kind: "attention"};
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const input = page.querySelector('input[name="csrf_token"]');
      return input && input.value ? {kind: "csrf", csrf: input.value} : {kind: "attention"};
    } catch (_error) {
      return {kind: "network"};
    } finally {
      clearTimeout(timeout);
    }
  }

  async function sendItem(item) {
    inFlight.add(item.token);
    render();
    try {
      let result = await post(item, pageCsrf());
      if (result.kind === "refused") {  // most likely a CSRF token that expired meanwhile: once more
        const fresh = await freshCsrf(item.action);
        if (fresh.kind === "csrf") {
          setPageCsrf(fresh.csrf);
          result = await post(item, fresh.csrf);
          if (result.kind === "refused") result = {kind: "attention"};
        } else {
          result = fresh;
        }
      }
      if (result.kind === "sent") {
        await deleteItem(item.token);
        // A form submitted the usual way and confirmed only now: it had arrived long ago, say nothing.
        if (item.state !== "submitting") showMessage(text("sent", {title: item.title}), "success", result.url);
      } else if (result.kind === "login" || result.kind === "attention") {
        await patchItem(item.token, {state: result.kind});
      } else if (item.state !== "waiting") {
        await patchItem(item.token, {state: "waiting"});
      }
      return result.kind;
    } finally {
      inFlight.delete(item.token);
    }
  }

  function sameUser(item) {
    return pageUser !== null && pageUser !== "" && String(item.user || "") === pageUser;
  }

  function sendable(item, now = Date.now()) {
    if (inFlight.has(item.token) || !sameUser(item) || item.state === "attention") return false;
    return !(item.state === "submitting" && now - (item.submittedAt || 0) < SUBMIT_GRACE_MS);
  }

  async function sendAll() {
    const items = (await allItems()).filter((item) => sendable(item)).sort((a, b) => a.savedAt - b.savedAt);
    if (items.length === 0) return;
    // First a light GET of the form page: is there signal, is the user still logged in? And a CSRF token of
    // this session (the page's own may be old: a kept copy, or from before logging in again). Only then the
    // photos go up the line.
    const probe = await freshCsrf(items[0].action);
    if (probe.kind === "network") return;
    if (probe.kind === "login") {
      await Promise.all(items.map((item) => patchItem(item.token, {state: "login"})));
      return;
    }
    if (probe.kind === "csrf") setPageCsrf(probe.csrf);
    for (const item of items) {
      if (!navigator.onLine || !sendable(item)) continue;
      if (await sendItem(item) === "network") break;  // no signal: the others wait too
    }
  }

  // Send what waits. One run at a time in this tab, and in all tabs where the browser has Web Locks.
  function flush() {
    if (!flushing) {
      flushing = (async () => {
        if (pageUser === null || !navigator.onLine) return;
        if (navigator.locks) {
          await navigator.locks.request("fangan-outbox-send", {ifAvailable: true}, (lock) => lock && sendAll());
        } else {
          await sendAll();
        }
      })().catch(() => undefined).finally(() => { flushing = null; render(); });
    }
    return flushing;
  }

  // ---------------------------------------------------------------- the page
  const part = (name) => (box ? box.querySelector(`[data-outbox-${name}]`) : null);

  function showMessage(message, kind, link, note = "") {
    const area = part("messages");
    if (!area || !message) return;
    if (note) area.querySelectorAll(`[data-note="${note}"]`).forEach((old) => old.remove());  // no repeats
    const line = el("p", {className: `flash flash-${kind}`, "data-note": note}, [message]);
    if (link) line.append(" ", el("a", {href: link, text: text("view")}));
    area.prepend(line);
    while (area.children.length > 3) area.lastElementChild.remove();
    box.hidden = false;
  }

  function stateText(item) {
    if (!sameUser(item)) return text("state-other-user");
    if (inFlight.has(item.token)) return text("state-sending");
    if (item.state === "login" || item.state === "attention") return text(`state-${item.state}`);
    return text("state-waiting");
  }

  function itemRow(item) {
    const time = new Date(item.savedAt).toLocaleString(document.documentElement.lang || undefined,
      {dateStyle: "short", timeStyle: "short"});
    const row = el("li", {"data-token": item.token, "data-state": inFlight.has(item.token) ? "sending" : item.state}, [
      el("strong", {text: item.title || item.action}),
      el("span", {className: "muted small", text: text("saved-at", {time})}),
      el("span", {className: "small", text: stateText(item)}),
    ]);
    const buttons = el("span");
    if (item.state === "login" && box.dataset.loginUrl) {
      buttons.append(el("a", {className: "button small", href: box.dataset.loginUrl, text: text("login")}), " ");
    }
    if (item.state === "attention" && navigator.onLine && sameUser(item)) {
      buttons.append(el("button", {type: "button", className: "button small", text: text("open"),
        onclick: () => openItem(item.token)}), " ");
    }
    if (!inFlight.has(item.token)) {
      buttons.append(el("button", {type: "button", className: "button small", text: text("discard"),
        onclick: () => discardItem(item.token)}));
    }
    row.append(buttons);
    return row;
  }

  let renderSeq = 0;
  async function render() {
    if (!box) return;
    const seq = ++renderSeq;
    let items = [];
    try {
      items = (await allItems()).sort((a, b) => a.savedAt - b.savedAt);
    } catch (_error) { /* no IndexedDB here: only the offline notice */ }
    if (seq !== renderSeq) return;  // a later render is under way
    const offline = part("offline");
    offline.textContent = text("offline");
    offline.hidden = navigator.onLine;
    const queue = part("queue");
    queue.hidden = items.length === 0;
    part("count").textContent = items.length === 1 ? text("waiting-one") : text("waiting-many", {n: items.length});
    part("list").replaceChildren(...items.map(itemRow));
    part("send").textContent = text("send-now");
    part("actions").hidden = !navigator.onLine || !items.some((item) => sendable(item));
    if (items.length === 0) part("messages").querySelectorAll('[data-note="saved"]').forEach((note) => note.remove());
    box.hidden = items.length === 0 && navigator.onLine && part("messages").children.length === 0;
    // Try again every 30 s while something can be sent.
    const waiting = items.some((item) => sameUser(item) && item.state !== "attention");
    if (waiting && !timer) timer = setInterval(flush, RETRY_MS);
    if (!waiting && timer) { clearInterval(timer); timer = null; }
  }

  async function discardItem(token) {
    if (inFlight.has(token) || !window.confirm(text("discard-confirm"))) return;
    await deleteItem(token).catch(() => undefined);
    render();
  }

  // A form the server did not accept: submit it again the usual way (photos included where the browser lets
  // a page fill a file input), so the server shows it with what to correct.
  async function openItem(token) {
    const item = await getItem(token);
    if (!item || !navigator.onLine) return;
    const native = el("form", {method: "post", action: item.action, enctype: "multipart/form-data", hidden: ""});
    const files = new Map();
    for (const [name, value] of item.entries) {
      if (typeof value !== "string") {
        if (!files.has(name)) files.set(name, []);
        if (value.name || value.blob.size) files.get(name).push(toFile(value));
        continue;
      }
      const field = el("textarea", {name});
      field.value = name === "csrf_token" ? pageCsrf() || value : value;
      native.append(field);
    }
    for (const [name, list] of files) {
      const input = el("input", {type: "file", name, multiple: ""});
      try {
        const transfer = new DataTransfer();
        list.forEach((file) => transfer.items.add(file));
        input.files = transfer.files;
      } catch (_error) { /* this browser cannot: the photos must be chosen again */ }
      native.append(input);
    }
    await patchItem(token, {state: "submitting", submittedAt: Date.now()});
    rememberSubmitted(token);
    inFlight.add(token);
    document.body.append(native);
    HTMLFormElement.prototype.submit.call(native);
  }

  function rememberSubmitted(token) {
    try { sessionStorage.setItem(SUBMITTED_KEY, token); } catch (_error) { /* private mode: resent later */ }
  }

  // After this tab submitted a form the usual way: did it arrive? The record page (reached by the redirect)
  // or the form shown again with errors means the server has it; anything else (the browser's "no internet"
  // page, then back) means it waits here to be sent.
  async function settleSubmitted() {
    let token = null;
    try {
      token = sessionStorage.getItem(SUBMITTED_KEY);
      sessionStorage.removeItem(SUBMITTED_KEY);
    } catch (_error) { /* no sessionStorage */ }
    inFlight.clear();
    if (!token) return;
    const nav = performance.getEntriesByType("navigation")[0];
    const redirectedHere = nav && nav.type === "navigate" && nav.redirectCount > 0;
    const onRecord = redirectedHere && location.pathname.startsWith("/f/records/");
    const shownAgain = box && box.dataset.method === "POST" && tokenInput() && tokenInput().value === token;
    const item = await getItem(token);
    if (!item || item.state !== "submitting") return;
    if (onRecord || shownAgain) await deleteItem(token);
    else await patchItem(token, {state: "waiting"});
  }

  // A kept copy of a new-form page (shown without signal) carries the token of the day it was kept; once used,
  // a new one, or the server would take this form for the earlier one. Going back to a page keeps its token.
  async function freshTokenIfUsed() {
    const input = tokenInput();
    const nav = performance.getEntriesByType("navigation")[0];
    if (!input || !box || box.dataset.method !== "GET" || (nav && nav.type === "back_forward")) return;
    if (await isUsed(input.value) || await getItem(input.value)) input.value = newToken();
  }

  async function onSubmit(event) {
    if (event.defaultPrevented) return;  // fangan.js: a second tap while the first is on its way
    const submitter = event.submitter;
    const action = submitter && submitter.name === "_action" ? submitter.value : "submit";
    if (action !== "submit") {
      // Adding or removing a row needs the server: without signal, stay on the page instead of losing it.
      if (!navigator.onLine) { event.preventDefault(); render(); }
      return;
    }
    event.preventDefault();
    if (window.fanganReady) await window.fanganReady();  // upload.js: photos still being shrunk
    let formData;
    try { formData = new FormData(form, submitter); } catch (_error) { formData = new FormData(form); }
    if (!formData.has("_action")) formData.set("_action", "submit");
    const token = String(formData.get("_token") || "") || newToken();
    formData.set("_token", token);
    const offline = !navigator.onLine;
    const item = {token, action: form.action, title: form.dataset.offlineTitle || document.title,
      savedAt: Date.now(), user: pageUser || "", state: offline ? "waiting" : "submitting", submittedAt: Date.now()};
    let kept = false;
    try {
      item.entries = await toEntries(formData);
      await putItem(item);
      await markUsed(token);
      kept = true;
    } catch (_error) { /* no IndexedDB, or the phone is full */ }

    const withFiles = Array.from(form.querySelectorAll('input[type="file"]')).some((input) => input.files.length);
    if (!offline && withFiles && window.fanganSend) {
      // Online with photos: upload.js sends it with a progress bar and shows the answer. If the signal drops
      // on the way, the copy kept above waits in the outbox like a form filled without signal.
      if (kept) inFlight.add(token);
      // The server answered. It has the form when it led on to another page (the record, the case) or showed
      // the form again with what to fix; anything else (log in again, an expired page, too many requests, an
      // error) leaves the copy waiting here, photos and all, to be sent later.
      const arrived = async ({status, landed, text: body}) => {
        inFlight.delete(token);
        if (!kept) return;
        const onward = landed.pathname !== new URL(form.action, location.href).pathname
          && landed.pathname !== loginPath && status < 400;
        const shownAgain = status === 400 && body.includes('id="fangan-form"');
        if (onward || shownAgain) await deleteItem(token);
        else await patchItem(token, {state: "waiting"});
      };
      if (await window.fanganSend(form, formData, arrived)) return;
      inFlight.delete(token);
      if (kept) await patchItem(token, {state: "waiting"});
    } else if (!offline) {
      // Online: the browser submits the form as it would without this script (record page, or the form
      // again with errors). The copy kept above is what is sent later if the signal drops on the way.
      if (kept) { inFlight.add(token); rememberSubmitted(token); }
      let extra = null;
      if (submitter && submitter.name && !form.querySelector(`input[type="hidden"][name="${submitter.name}"]`)) {
        extra = el("input", {type: "hidden", name: submitter.name, value: submitter.value});
        form.append(extra);
      }
      HTMLFormElement.prototype.submit.call(form);
      if (extra) extra.remove();
      return;
    }

    delete form.dataset.sending;  // set by fangan.js: this page stays, the next form must be submittable
    if (!kept) {
      showMessage(text("storage-error"), "error");
      box && box.scrollIntoView({block: "start"});
      return;
    }
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => undefined);
    form.reset();
    const input = tokenInput();
    if (input) input.value = newToken();  // the next form filled on this page is another record
    showMessage(text("saved"), "success", null, "saved");
    await render();
    if (box) box.scrollIntoView({block: "start"});
  }

  // ---------------------------------------------------------------- start
  async function start(restored) {
    try {
      await settleSubmitted();
      if (!restored) await freshTokenIfUsed();  // a page restored as it was left keeps its form and token
      pruneUsed().catch(() => undefined);
    } catch (_error) { /* no IndexedDB: the form is submitted the usual way */ }
    await render();
    await flush();
  }

  // Only a page with the outbox keeps forms: elsewhere (a case's step) nothing could show or send the copy.
  if (form && box) form.addEventListener("submit", (event) => { onSubmit(event); });
  if (box) part("send").addEventListener("click", () => { flush(); });
  window.addEventListener("online", () => { render(); flush(); });
  window.addEventListener("offline", () => { render(); });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") flush(); });
  window.addEventListener("pageshow", (event) => { if (event.persisted) start(true); });  // back to this page

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready).then((registration) => {
      // The first visit happens before the worker is in charge: ask it to keep this page too.
      if (box && box.dataset.method === "GET" && registration.active) {
        registration.active.postMessage({type: "keep-page", url: location.href});
      }
    }).catch(() => undefined);
  }

  const ready = start(false);
  window.fanganOutbox = {
    ready,
    count: () => allItems().then((items) => items.length),
    items: () => allItems().then((items) => items.map(({entries, ...rest}) => ({...rest, entries: entries.length}))),
    flush: () => flush(),
  };
})();
