// Irreversible actions ask first: a form with data-confirm is sent only if the person says yes.
// (Without JavaScript the form is sent as it is; the server checks everything either way.)
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target, submitter = event.submitter;
    // Only sending asks: a form's other buttons (add a row, update the form) change nothing yet.
    if (submitter && submitter.name === "_action" && submitter.value !== "submit") { return; }
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
