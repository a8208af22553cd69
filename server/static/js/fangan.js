// Small progressive enhancements for form pages; everything works without them.
(function () {
  "use strict";

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
          status.textContent = c.latitude.toFixed(6) + ", " + c.longitude.toFixed(6) + " — " +
            box.dataset.textFound.replace("{m}", Math.round(c.accuracy));
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

  document.addEventListener("DOMContentLoaded", function () { initGeo(document); });
  document.addEventListener("htmx:afterSettle", function (event) { initGeo(event.target); });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form.fangan-form").forEach(function (form) { delete form.dataset.sending; });
  });
})();
