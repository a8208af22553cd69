// Irreversible actions ask first: a form with data-confirm is sent only if the person says yes.
// (Without JavaScript the form is sent as it is; the server checks everything either way.)
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
