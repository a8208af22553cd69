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

  // A route: while recording, each good fix (accuracy under 50 m) at least 10 m from the last becomes a point of
  // the line in the field's hidden input, found by its name each time (a live refresh of the form replaces
  // the element while the phone keeps recording).
  var recording = {};  // input name → {watch, points}
  function metres(a, b) {
    var scale = Math.cos((a[1] + b[1]) / 2 * Math.PI / 180);
    return Math.hypot((b[0] - a[0]) * scale, b[1] - a[1]) * 111320;
  }
  function routeLength(points) {
    var total = 0;
    for (var i = 1; i < points.length; i++) total += metres(points[i - 1], points[i]);
    return Math.round(total);
  }
  function initRoute(root) {
    root.querySelectorAll("[data-route]").forEach(function (box) {
      var button = box.querySelector("[data-route-button]"), input = box.querySelector("[data-route-input]");
      if (!button || !("geolocation" in navigator) || button.dataset.ready) return;
      button.dataset.ready = "1";
      button.hidden = false;
      var name = input.name;
      function parts() {
        var el = document.querySelector("[data-route-input][name='" + name + "']");
        var holder = el ? el.closest("[data-route]") : box;
        return {input: el || input, status: holder.querySelector("[data-route-status]"),
                button: holder.querySelector("[data-route-button]"), box: holder};
      }
      function say(key, points) {
        var p = parts();
        p.status.textContent = p.box.dataset[key].replace("{n}", points.length).replace("{m}", routeLength(points));
      }
      if (recording[name]) { button.textContent = box.dataset.textStop; say("textRecording", recording[name].points); }
      button.addEventListener("click", function () {
        var running = recording[name];
        if (running) {  // stop
          navigator.geolocation.clearWatch(running.watch);
          delete recording[name];
          parts().button.textContent = box.dataset.textStart;
          say("textStopped", running.points);
          return;
        }
        var points = [];
        try { var kept = JSON.parse(parts().input.value || "null"); if (kept && kept.coordinates) points = kept.coordinates; } catch (e) { points = []; }
        var watch = navigator.geolocation.watchPosition(function (position) {
          var c = position.coords, point = [Number(c.longitude.toFixed(6)), Number(c.latitude.toFixed(6))];
          if (c.accuracy > 50) return;
          if (points.length && metres(points[points.length - 1], point) < 10) return;
          if (points.length >= 5000) return;
          points.push(point);
          var p = parts();
          p.input.value = points.length > 1 ? JSON.stringify({type: "LineString", coordinates: points}) : "";
          say("textRecording", points);
        }, function () {
          parts().status.textContent = box.dataset.textFailed;
        }, {enableHighAccuracy: true, maximumAge: 0, timeout: 30000});
        recording[name] = {watch: watch, points: points};
        parts().button.textContent = box.dataset.textStop;
        say("textRecording", points);
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

  document.addEventListener("DOMContentLoaded", function () { initGeo(document); initRoute(document); initSearch(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    initGeo(event.target); initRoute(event.target); initSearch(event.target);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form.fangan-form").forEach(function (form) { delete form.dataset.sending; });
  });
})();
