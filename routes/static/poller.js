// One poller for the progress pages (a Plaid link, a migration run): asks a JSON status URL
// every intervalMs, hands each answer to show(answer), which returns true once the work has
// ended, and then reloads the page so the server renders the outcome. Logged out or gone
// (401, 404): reload, and the server says what now. Vendored, no dependencies; loaded from
// this origin only (the CSP allows no inline script).
(function () {
  "use strict";

  window.pollProgress = function (url, intervalMs, show, lostContact) {
    function poll() {
      fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      })
        .then(function (response) {
          if (response.status === 401 || response.status === 404) {
            window.location.reload();
            return null;
          }
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (answer) {
          if (answer === null) {
            return;
          }
          if (show(answer)) {
            window.location.reload();
          } else {
            window.setTimeout(poll, intervalMs);
          }
        })
        .catch(function () {
          lostContact("Lost contact with the server; still trying…");
          window.setTimeout(poll, intervalMs * 2);
        });
    }

    window.setTimeout(poll, intervalMs);
  };
})();
