// Photos on a phone: each photo chosen is shrunk here before it is sent (about 1,600 px on its long side,
// with its EXIF kept: the server reads when and where it was taken), shown as a thumbnail at once, and the
// form is sent with a progress bar and a button that says it is sending. Without JavaScript, or where a
// browser cannot do this, the original files are sent as they are; the server checks every file either way.
// Shrinking uses browser-image-compression (vendored, MIT); its worker loads the same vendored file.
(function () {
  "use strict";
  if (window.fanganSend) return;  // loaded twice on one page

  var LONG_SIDE = 1600;
  var pending = new Set();  // shrinking still under way: sending waits for it
  var script = document.currentScript;
  var libURL = script && script.dataset.lib ? new URL(script.dataset.lib, location.href).href : null;
  var texts = script ? script.dataset : {};

  function shrinkable(file) {
    return /^image\/(jpeg|png|webp)$/.test(file.type) && window.imageCompression && window.DataTransfer;
  }

  function shrink(file) {
    if (!shrinkable(file)) return Promise.resolve(file);
    return window.imageCompression(file, {
      maxWidthOrHeight: LONG_SIDE, maxSizeMB: 1.5, initialQuality: 0.85, preserveExif: true,
      useWebWorker: !!libURL, libURL: libURL || undefined
    }).then(function (small) {
      // Keep the name (the server shows it); keep the original when shrinking would not make it smaller.
      return small.size < file.size ? new File([small], file.name, {type: small.type, lastModified: file.lastModified}) : file;
    }, function () { return file; });
  }

  function thumbs(input, files) {
    var box = input.parentNode.querySelector("[data-new-thumbs]");
    if (!box) {
      box = document.createElement("div");
      box.className = "thumbs";
      box.setAttribute("data-new-thumbs", "");
      input.insertAdjacentElement("afterend", box);
    }
    box.querySelectorAll("img").forEach(function (img) { URL.revokeObjectURL(img.src); });
    box.textContent = "";
    Array.prototype.forEach.call(files, function (file) {
      var item = document.createElement("span");
      item.className = "thumb";
      if (/^image\//.test(file.type)) {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = file.name;
        item.appendChild(img);
      } else {
        item.textContent = file.name;
      }
      var size = document.createElement("small");
      size.className = "muted";
      size.textContent = Math.max(1, Math.round(file.size / 1024)) + " KB";
      item.appendChild(size);
      box.appendChild(item);
    });
    return box;
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.files.length) return;
    var chosen = Array.prototype.slice.call(input.files);
    var box = thumbs(input, chosen);
    if (!chosen.some(shrinkable)) return;
    box.setAttribute("aria-busy", "true");
    var job = Promise.all(chosen.map(shrink)).then(function (files) {
      if (input.files.length !== chosen.length || input.files[0] !== chosen[0]) return;  // chosen again since
      var list = new DataTransfer();
      files.forEach(function (file) { list.items.add(file); });
      input.files = list.files;
      thumbs(input, files);
    }).finally(function () { box.removeAttribute("aria-busy"); pending.delete(job); });
    pending.add(job);
  });

  // Resolves when every photo chosen so far is shrunk (at once when none is under way).
  window.fanganReady = function () { return Promise.all(Array.from(pending)); };

  function bar(form) {
    var row = form.querySelector("[data-progress]");
    if (!row) {
      row = document.createElement("p");
      row.setAttribute("data-progress", "");
      row.setAttribute("role", "status");
      row.innerHTML = '<progress max="100" value="0"></progress> <span></span>';
      var submit = form.querySelector("[data-submit]");
      (submit && submit.parentNode ? submit.parentNode : form).insertAdjacentElement("afterend", row);
    }
    return row;
  }

  function sending(form, on) {
    form.querySelectorAll("[data-submit]").forEach(function (button) {
      if (on) {
        button.dataset.label = button.dataset.label || button.textContent;
        button.textContent = texts.textSending || "…";
        button.setAttribute("aria-busy", "true");
      } else if (button.dataset.label) {
        button.textContent = button.dataset.label;
        button.removeAttribute("aria-busy");
      }
    });
  }

  // Send a form's data with a progress bar. Resolves true once the answer is on its way to the screen (the
  // page it led to, or the form again with what to fix), false when the network failed (nothing shown: the
  // caller keeps the form for later). `arrived({status, landed, text})` is awaited first, when the server has
  // answered (`landed`: the address the answer came from, after redirects).
  window.fanganSend = function (form, data, arrived) {
    return new Promise(function (resolve) {
      var row = bar(form), progress = row.querySelector("progress"), label = row.querySelector("span");
      var xhr = new XMLHttpRequest();
      sending(form, true);
      xhr.open("POST", form.action);
      xhr.upload.onprogress = function (event) {
        if (!event.lengthComputable) return;
        var share = Math.round(event.loaded / event.total * 100);
        progress.value = share;
        label.textContent = (texts.textProgress || "{n}").replace("{n}", share + "%");
      };
      xhr.onload = function () {
        var landed = new URL(xhr.responseURL || form.action, location.href);
        var answer = {status: xhr.status, landed: landed, text: xhr.responseText || ""};
        Promise.resolve(arrived ? arrived(answer) : null).catch(function () { return null; }).then(function () {
          resolve(true);
          if (landed.pathname !== new URL(form.action, location.href).pathname) {
            location.assign(landed.href);  // done: where the server sent us (the record, the case)
            return;
          }
          // The same form again, with what to fix (or the server's error page): show it as the browser would
          // have. Its scripts run again on the new page, so they must not find themselves already loaded.
          window.fanganSend = window.fanganOutbox = undefined;
          history.replaceState(null, "", landed.href);
          document.open();
          document.write(xhr.responseText);
          document.close();
        });
      };
      xhr.onerror = xhr.ontimeout = function () {
        sending(form, false);
        row.remove();
        resolve(false);
      };
      xhr.send(data);
    });
  };

  // Pages without the offline outbox (the public's): send forms with photos this way too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.classList || !form.classList.contains("fangan-form")) return;
    var submitter = event.submitter;
    if (submitter && submitter.name === "_action" && submitter.value !== "submit") return;
    if (!form.querySelector('input[type="file"]')) return;
    event.preventDefault();
    var data;
    window.fanganReady().then(function () {
      try { data = new FormData(form, submitter); } catch (_error) { data = new FormData(form); }
      if (!data.has("_action")) data.set("_action", "submit");
      return window.fanganSend(form, data);
    }).then(function (shown) {
      if (!shown) { delete form.dataset.sending; HTMLFormElement.prototype.submit.call(form); }
    });
  });
})();
