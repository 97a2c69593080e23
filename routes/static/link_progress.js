// Plaid link progress: polls the job's JSON status and reloads the page when the job has
// finished, so the server renders the final state (and any follow-up button).
// Vendored, no dependencies; loaded from this origin only (the CSP allows no inline script).
(function () {
  "use strict";

  var FINISHED = ["done", "duplicate", "failed"];
  var box = document.getElementById("link-progress");
  if (!box) {
    return;
  }
  var statusUrl = box.getAttribute("data-status-url");
  var intervalMs = parseInt(box.getAttribute("data-poll-ms") || "1500", 10);
  if (FINISHED.indexOf(box.getAttribute("data-status")) >= 0) {
    return;
  }
  var statusBadge = document.getElementById("link-status");
  var message = document.getElementById("link-message");

  function show(job) {
    statusBadge.textContent = job.status;
    statusBadge.className = "badge status-" + job.status;
    message.textContent = job.message;
  }

  function poll() {
    fetch(statusUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (response) {
        if (response.status === 401 || response.status === 404) {
          // Logged out, or the job is gone (app restarted): let the server say what now.
          window.location.reload();
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (job) {
        if (job === null) {
          return;
        }
        show(job);
        if (job.finished) {
          window.location.reload();
        } else {
          window.setTimeout(poll, intervalMs);
        }
      })
      .catch(function () {
        message.textContent = "Lost contact with the server; still trying…";
        window.setTimeout(poll, intervalMs * 2);
      });
  }

  window.setTimeout(poll, intervalMs);
})();
