// Fangan service worker: keeps the app shell and the form pages usable without signal.
// Served at /sw.js (scope "/") and registered by static/js/offline.js. See docs/offline.md.
//
// - App shell (scripts, CSS): served from the cache at once, refreshed in the background
//   (cache-first, so a page opens offline; the refresh means a deploy reaches phones on the next load).
// - Form pages (/f/<district>/ and /f/<district>/<form>/new): network first, the last good copy when
//   there is no signal (or the network takes too long and a copy exists).
// - Never cached: anything but GET, uploads (photos), /admin, records (personal data), other pages.
// Filled forms are not kept here: offline.js keeps them in IndexedDB and sends them itself.
"use strict";

const VERSION = "v5";  // bump to drop every cache of older versions on activate
const SHELL = `fangan-shell-${VERSION}`;
const PAGES = `fangan-pages-${VERSION}`;
const SHELL_FILES = [
  "/static/vendor/htmx-2.0.11.min.js",
  "/static/js/offline.js",
  "/static/js/fangan.js",
  "/static/js/confirm.js",
  "/static/js/upload.js",
  "/static/vendor/browser-image-compression-2.0.2.js",
  "/theme/fangan.css",
];
const NETWORK_WAIT_MS = 10000;  // a weak signal: after this, serve the kept copy of a page if there is one

// Pages a chief needs on patrol: a district's list of forms, and filling a form.
const FORM_PAGE = /^\/f\/[^/]+\/(?:[^/]+\/new)?$/;

function neverCache(url) {
  return url.pathname.startsWith("/admin") || url.pathname.includes("/uploads");
}

self.addEventListener("install", (event) => {
  // One by one, so one missing file does not stop the worker from installing.
  event.waitUntil(caches.open(SHELL)
    .then((cache) => Promise.all(SHELL_FILES.map((path) => cache.add(path).catch(() => undefined))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names
      .filter((name) => name.startsWith("fangan-") && name !== SHELL && name !== PAGES)
      .map((name) => caches.delete(name))))
    .then(() => self.clients.claim()));
});

// A page worth keeping: a plain, complete HTML page from this site (not a redirect to /login).
function keepable(response) {
  return response.ok && !response.redirected && response.type === "basic" &&
    (response.headers.get("Content-Type") || "").startsWith("text/html") &&
    !(response.headers.get("Cache-Control") || "").includes("no-store");
}

async function pageNetworkFirst(event) {
  const cache = await caches.open(PAGES);
  const network = fetch(event.request).then((response) => {
    if (keepable(response)) {
      const copy = response.clone();
      event.waitUntil(cache.put(event.request.url, copy));
    }
    return response;
  });
  event.waitUntil(network.then(() => undefined, () => undefined));  // let a slow answer still refresh the copy
  const kept = await cache.match(event.request.url);
  if (!kept) return network;  // nothing kept: the browser shows its own offline page on failure
  const slow = new Promise((resolve) => setTimeout(() => resolve(kept), NETWORK_WAIT_MS));
  return Promise.race([network.catch(() => kept), slow]);
}

async function shellCacheFirst(event) {
  const cache = await caches.open(SHELL);
  const kept = await cache.match(event.request, {ignoreSearch: true});
  const network = fetch(event.request).then((response) => {
    if (response.ok && response.type === "basic") event.waitUntil(cache.put(event.request, response.clone()));
    return response;
  });
  if (kept) {
    event.waitUntil(network.then(() => undefined, () => undefined));
    return kept;
  }
  return network;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    // Logging out: forget the kept pages (they show the user's name); the browser sends the POST as usual.
    if (request.method === "POST" && url.pathname === "/logout") event.waitUntil(caches.delete(PAGES));
    return;  // never cached, never answered from a cache
  }
  if (neverCache(url)) return;
  if (request.mode === "navigate") {
    if (FORM_PAGE.test(url.pathname)) event.respondWith(pageNetworkFirst(event));
    return;
  }
  if (url.pathname.startsWith("/static/") || url.pathname.startsWith("/theme/")) {
    event.respondWith(shellCacheFirst(event));
  }
});

// offline.js asks to keep the page it is on: the first visit happens before this worker controls the page.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "keep-page" || typeof data.url !== "string") return;
  const url = new URL(data.url, self.location.origin);
  if (url.origin !== self.location.origin || !FORM_PAGE.test(url.pathname)) return;
  event.waitUntil(caches.open(PAGES).then(async (cache) => {
    if (await cache.match(url.href)) return;
    const response = await fetch(url.href, {credentials: "same-origin"});
    if (keepable(response)) await cache.put(url.href, response);
  }).catch(() => undefined));
});
