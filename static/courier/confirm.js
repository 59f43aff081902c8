// Buttons with data-confirm ask before their form is sent.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
