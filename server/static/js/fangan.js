// Small progressive enhancements for form pages; everything works without them.
(function () {
  "use strict";

  // The status line under a location: what the hidden inputs hold.
  function showGeo(box) {
    var lat = box.querySelector("[data-geo-lat]").value, lng = box.querySelector("[data-geo-lng]").value;
    var accuracy = box.querySelector("[data-geo-accuracy]").value;
    if (!lat || !lng) return;
    box.querySelector("[data-geo-status]").textContent = lat + ", " + lng + " — " +
      box.dataset.textFound.replace("{m}", accuracy || "?");
  }

  // Location: show the "use my location" button only where the browser can locate.
  function initGeo(root) {
    root.querySelectorAll("[data-geo]").forEach(function (box) {
      var button = box.querySelector("[data-geo-button]");
      if (!button || !("geolocation" in navigator) || button.dataset.ready) return;
      button.dataset.ready = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        var status = box.querySelector("[data-geo-status]");
        status.textContent = box.dataset.textLocating;
        navigator.geolocation.getCurrentPosition(function (position) {
          var c = position.coords;
          box.querySelector("[data-geo-lat]").value = c.latitude.toFixed(6);
          box.querySelector("[data-geo-lng]").value = c.longitude.toFixed(6);
          box.querySelector("[data-geo-accuracy]").value = Math.round(c.accuracy);
          showGeo(box);
          box.dispatchEvent(new CustomEvent("fangan:located"));  // its map moves its pin there (js/map.js)
        }, function () {
          status.textContent = box.dataset.textFailed;
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
      });
    });
  }

  // A second tap on "submit" while the first is on its way does nothing (the server would dedupe anyway).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("fangan-form")) return;
    var submitter = event.submitter;
    if (form.dataset.sending && submitter && submitter.value === "submit") {
      event.preventDefault();
      return;
    }
    if (submitter && submitter.value === "submit") form.dataset.sending = "1";
  }, true);

  // A refresh from the server must not wipe what the person typed while it was on its way: note the values
  // when the request leaves, and after the swap put back every value that changed in the meantime. Hidden
  // inputs count too: a location found while a slow refresh was on its way is kept.
  function values(form) {
    var out = {};
    form.querySelectorAll("input, textarea, select").forEach(function (el) {
      if (!el.name || el.type === "file" || el.type === "submit") return;
      if (el.type === "radio" || el.type === "checkbox") {
        out[el.name + "\u0000" + el.value] = el.checked;
      } else {
        out[el.name] = el.value;
      }
    });
    return out;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.target.closest && event.target.closest("form.fangan-form");
    if (form) form._sent = values(form);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.target.closest && event.target.closest("form.fangan-form");
    if (!form || !form._sent) return;
    var now = values(form), edits = {};
    Object.keys(now).forEach(function (key) { if (now[key] !== form._sent[key]) edits[key] = now[key]; });
    form._edits = edits;
  });

  // Put them back as soon as the new body is in (not after htmx's settle delay), so a tap on "submit" in
  // between sends what the person sees.
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("form.fangan-form").forEach(function (form) {
      var edits = form._edits;
      if (!edits) return;
      form._edits = null;
      form.querySelectorAll("input, textarea, select").forEach(function (el) {
        if (!el.name) return;
        if (el.type === "radio" || el.type === "checkbox") {
          var key = el.name + "\u0000" + el.value;
          if (key in edits) el.checked = edits[key];
        } else if (el.name in edits && el.type !== "file") {
          el.value = edits[el.name];
        }
      });
      form.querySelectorAll("[data-geo]").forEach(showGeo);
    });
  });

  // A long list of choices (the categories) gets a search box above it: typing keeps the choices whose
  // name or group holds the words; the select itself is unchanged and works without this.
  function initSearch(root) {
    root.querySelectorAll("select[data-searchable]").forEach(function (select) {
      if (select.previousElementSibling && select.previousElementSibling.hasAttribute("data-choice-search")) return;
      var box = document.createElement("input");
      box.type = "search";
      box.setAttribute("data-choice-search", "");
      box.setAttribute("aria-label", select.dataset.searchLabel || "");
      box.placeholder = select.dataset.searchPlaceholder || "";
      box.autocomplete = "off";
      select.insertAdjacentElement("beforebegin", box);
      box.addEventListener("input", function () {
        var words = box.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
        var first = null;
        select.querySelectorAll("option").forEach(function (option) {
          if (!option.value) return;
          var group = option.parentNode.tagName === "OPTGROUP" ? option.parentNode.label : "";
          var text = (group + " " + option.textContent).toLowerCase();
          var shown = words.every(function (w) { return text.indexOf(w) >= 0; });
          option.hidden = !shown;
          if (shown && !first) first = option;
        });
        select.querySelectorAll("optgroup").forEach(function (group) {
          group.hidden = !group.querySelector("option:not([hidden])");
        });
        if (first && words.length && select.selectedOptions[0] && select.selectedOptions[0].hidden) {
          select.value = first.value;  // what is chosen is always one of those shown
          select.dispatchEvent(new Event("change", {bubbles: true}));
        }
      });
      // Enter in the box must not send the form half-filled.
      box.addEventListener("keydown", function (event) { if (event.key === "Enter") event.preventDefault(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { initGeo(document); initSearch(document); });
  document.addEventListener("htmx:afterSettle", function (event) { initGeo(event.target); initSearch(event.target); });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form.fangan-form").forEach(function (form) { delete form.dataset.sending; });
  });
})();
